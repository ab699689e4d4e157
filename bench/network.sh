#!/usr/bin/env bash
# bench/network.sh — networking costs, berth beside docker (when a docker engine runs):
#   * `run --rm busybox true` on the default bridge and with `--network none` (medians);
#   * TCP throughput from the host into a container: through a published port on
#     127.0.0.1 and straight to the container's address on the bridge.
# Traffic stays on this machine: loopback and the engines' own bridges.
#
# Env: BERTH (berth binary), BERTH_HOST (default unix:///run/berth/berth.sock),
#      DOCKER (default /usr/local/bin/docker), RUNS (20), WARMUP (3), MB (data per transfer, 400)
# Needs busybox:latest in each engine and python3 (the sending side).
set -uo pipefail

RUNS=${RUNS:-20}
WARMUP=${WARMUP:-3}
MB=${MB:-400}
DOCKER=${DOCKER:-/usr/local/bin/docker}
export BERTH_HOST=${BERTH_HOST:-unix:///run/berth/berth.sock}
here=$(cd "$(dirname "$0")/.." && pwd)
if [ -z "${BERTH:-}" ]; then
  if command -v berth >/dev/null 2>&1; then BERTH=$(command -v berth); else BERTH=$here/target/release/berth; fi
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# shellcheck source=bench/lib.sh
. "$here/bench/lib.sh"

# send_mbps HOST PORT : sends $MB MiB over one TCP connection, prints MB/s (the peer discards)
send_mbps() {
  python3 - "$1" "$2" "$MB" <<'PY'
import socket, sys, time
host, port, mb = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
buf = b"\0" * (1 << 20)
for _ in range(50):
    try:
        s = socket.create_connection((host, port), timeout=5)
        break
    except OSError:
        time.sleep(0.1)
else:
    print("nan"); sys.exit(0)
t0 = time.monotonic()
for _ in range(mb):
    s.sendall(buf)
s.shutdown(socket.SHUT_WR)
while s.recv(65536):
    pass
dt = time.monotonic() - t0
print(f"{mb * 1.048576 / dt:.0f}")
PY
}

# suite NAME CLI... : prints "NAME metric value" lines
suite() {
  local name=$1; shift
  local cli=("$@") port cid ip
  echo "$name run_bridge_ms $(median_ms "$name-bridge" "${cli[@]}" run --rm busybox true)"
  echo "$name run_none_ms $(median_ms "$name-none" "${cli[@]}" run --rm --network none busybox true)"
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  cid=$("${cli[@]}" run -d -p "127.0.0.1:$port:5001" busybox sh -c 'while true; do nc -l -p 5001 >/dev/null; done') || return 1
  ip=$("${cli[@]}" inspect -f '{{.NetworkSettings.IPAddress}}' "$cid")
  sleep 0.5
  echo "$name tcp_published_MBps $(send_mbps 127.0.0.1 "$port")"
  echo "$name tcp_direct_MBps $(send_mbps "$ip" 5001)"
  "${cli[@]}" rm -f "$cid" >/dev/null
}

echo "berth: $BERTH  host: $BERTH_HOST  runs: $RUNS (+$WARMUP)  transfer: $MB MiB"
: >"$tmp/results"
if "$BERTH" version >/dev/null 2>&1; then
  suite berth "$BERTH" | tee -a "$tmp/results"
else
  echo "berth: daemon not reachable at $BERTH_HOST, skipped"
fi
if [ -x "$DOCKER" ] && env -u DOCKER_HOST "$DOCKER" version >/dev/null 2>&1; then
  suite docker env -u DOCKER_HOST "$DOCKER" | tee -a "$tmp/results"
else
  echo "docker: no engine reachable, skipped"
fi
for m in run_bridge_ms run_none_ms tcp_published_MBps tcp_direct_MBps; do
  b=$(awk -v m=$m '$1 == "berth" && $2 == m { print $3 }' "$tmp/results")
  d=$(awk -v m=$m '$1 == "docker" && $2 == m { print $3 }' "$tmp/results")
  [ -n "$b" ] && [ -n "$d" ] && echo "ratio berth/docker $m: $(ratio "$b" "$d")"
done
