#!/usr/bin/env python3
"""bench/spawn-times.py — wall times of short commands, interleaved, for ratios of milliseconds.

Usage: spawn-times.py ROUNDS MODE CMDFILE
  CMDFILE   one command per line, as a JSON array of its words (no shell)
  MODE      warm: before each timed run, one untimed run of the same command, right before it
            turns: nothing between the runs (each command right after the one before it)
            cold:SECONDS: before each timed run, the machine is left idle for SECONDS instead
Prints one line per timed run, `<line number of the command, from 0> <ms>`; the commands take
turns within each round (0 1 2 0 1 2 ...), so the machine's drift hits them alike.

Why not bash's `$EPOCHREALTIME` around the command: bash forks itself for every command, and
the copy of a large script's bash costs ~0.3-0.4 ms on this machine; a constant added to both
sides of a ratio pulls it towards 1. This starts each command with posix_spawn (glibc: vfork
semantics, nothing copied), output to /dev/null, and reads the clock just before and just after.
Why the warm-up run in `warm` mode: interleaved sample by sample, each command is timed right
after the other one, and what the other leaves running (a Go daemon's collector, its client's
exit) falls into its figure; an untimed run of the same command first absorbs it.
"""
import json
import os
import sys
import time


def run(argv, null):
    fa = [(os.POSIX_SPAWN_DUP2, null, 0), (os.POSIX_SPAWN_DUP2, null, 1), (os.POSIX_SPAWN_DUP2, null, 2)]
    t0 = time.perf_counter_ns()
    pid = os.posix_spawnp(argv[0], argv, os.environ, file_actions=fa)
    _, status = os.waitpid(pid, 0)
    t1 = time.perf_counter_ns()
    if os.waitstatus_to_exitcode(status) != 0:
        print(f"failed: {' '.join(argv)}", file=sys.stderr)
    return (t1 - t0) / 1e6


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    rounds, mode = int(sys.argv[1]), sys.argv[2]
    cmds = [json.loads(line) for line in open(sys.argv[3]) if line.strip()]
    idle = None
    if mode.startswith("cold:"):
        idle = float(mode[5:])
    elif mode not in ("warm", "turns"):
        sys.exit(f"unknown mode {mode}")
    null = os.open(os.devnull, os.O_RDWR)
    for _ in range(rounds):
        for i, argv in enumerate(cmds):
            if mode == "warm":
                run(argv, null)
            elif idle is not None:
                time.sleep(idle)
            print(i, f"{run(argv, null):.3f}", flush=True)


if __name__ == "__main__":
    main()
