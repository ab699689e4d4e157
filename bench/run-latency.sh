#!/usr/bin/env bash
# bench/run-latency.sh — how long `berth run --rm busybox true` takes, next to
# `docker run --rm busybox true` when a docker engine is reachable; plus
# berthd's idle RSS and one berth-shim's RSS.
#
# Env: BERTH (berth binary, default: berth in PATH, else target/release/berth)
#      BERTH_HOST (daemon socket, default unix:///run/berth/berth.sock)
#      BERTHD_PIDFILE (default /run/berth/berthd.pid)
#      RUNS (default 20), WARMUP (default 3), DOCKER (default /usr/local/bin/docker)
# Needs busybox:latest loaded in each engine (scripts/make-busybox-image.sh).
set -uo pipefail

RUNS=${RUNS:-20}
WARMUP=${WARMUP:-3}
DOCKER=${DOCKER:-/usr/local/bin/docker}
BERTHD_PIDFILE=${BERTHD_PIDFILE:-/run/berth/berthd.pid}
export BERTH_HOST=${BERTH_HOST:-unix:///run/berth/berth.sock}
here=$(cd "$(dirname "$0")/.." && pwd)
if [ -z "${BERTH:-}" ]; then
  if command -v berth >/dev/null 2>&1; then BERTH=$(command -v berth)
  elif [ -x "$here/target/release/berth" ]; then BERTH=$here/target/release/berth
  else BERTH=berth; fi
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# shellcheck source=bench/lib.sh
. "$here/bench/lib.sh"

echo "berth: $BERTH  host: $BERTH_HOST  runs: $RUNS (+$WARMUP warm-up)"
berth_ms=""
if "$BERTH" version >/dev/null 2>&1; then
  berth_ms=$(median_ms berth "$BERTH" run --rm busybox true) && echo "berth run --rm busybox true: median ${berth_ms} ms"
else
  echo "berth: daemon not reachable at $BERTH_HOST, skipped"
fi

docker_ms=""
if [ -x "$DOCKER" ] && "$DOCKER" version >/dev/null 2>&1; then
  docker_ms=$(median_ms docker "$DOCKER" run --rm busybox true) && echo "docker run --rm busybox true: median ${docker_ms} ms"
else
  echo "docker: no engine reachable, skipped"
fi
if [ -n "$berth_ms" ] && [ -n "$docker_ms" ]; then
  awk -v b="$berth_ms" -v d="$docker_ms" 'BEGIN { printf "ratio berth/docker: %.3f\n", b / d }'
fi

# berthd idle RSS
if [ -r "$BERTHD_PIDFILE" ] && pid=$(cat "$BERTHD_PIDFILE") && [ -n "$(vmrss_kb "$pid")" ]; then
  echo "berthd idle RSS: $(vmrss_kb "$pid") kB (pid $pid)"
else
  echo "berthd idle RSS: unknown (no live pid in $BERTHD_PIDFILE)"
fi

# one berth-shim's RSS
if [ -n "$berth_ms" ] && id=$("$BERTH" run -d busybox sleep 30 2>/dev/null) && [ -n "$id" ]; then
  shim=""
  for _ in $(seq 50); do
    for p in /proc/[0-9]*; do
      [ -r "$p/cmdline" ] || continue
      cmd=$(tr '\0' ' ' <"$p/cmdline" 2>/dev/null) || continue
      case $cmd in *berth-shim*"$id"*) shim=${p#/proc/}; break ;; esac
    done
    [ -n "$shim" ] && break
    sleep 0.1
  done
  if [ -n "$shim" ]; then
    echo "berth-shim RSS: $(vmrss_kb "$shim") kB (pid $shim, container ${id:0:12})"
  else
    echo "berth-shim RSS: no berth-shim process found for ${id:0:12}"
  fi
  "$BERTH" rm -f "$id" >/dev/null 2>&1 || true
fi
