#!/usr/bin/env bash
# bench/lifecycle.sh — berth next to docker (when a docker engine answers) for:
#   exec latency (`exec c true`), 50 detached starts then one `rm -f` of all, reading back
#   100 MB of logs in 1 KB lines, `stats --no-stream` latency, daemon RSS with 50 containers
#   running and RSS per shim.
# Env: BERTH (binary; default berth in PATH, else target/release/berth), BERTH_HOST,
#      BERTHD_PIDFILE (default /run/berth/berthd.pid), DOCKER (default /usr/local/bin/docker),
#      RUNS (default 20). Needs busybox:latest loaded in each engine.
set -uo pipefail
RUNS=${RUNS:-20}
DOCKER=${DOCKER:-/usr/local/bin/docker}
BERTHD_PIDFILE=${BERTHD_PIDFILE:-/run/berth/berthd.pid}
export BERTH_HOST=${BERTH_HOST:-unix:///run/berth/berth.sock}
here=$(cd "$(dirname "$0")/.." && pwd)
if [ -z "${BERTH:-}" ]; then
  if command -v berth >/dev/null 2>&1; then BERTH=$(command -v berth); else BERTH=$here/target/release/berth; fi
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# median_ms CMD... : median wall time of RUNS runs after 2 warm-ups, in ms
median_ms() {
  hyperfine -N --warmup 2 --runs "$RUNS" --export-json "$tmp/h.json" "$(printf '%q ' "$@")" >/dev/null 2>&1 || { echo "nan"; return; }
  sed -n 's/.*"median": *\([0-9.eE+-]*\).*/\1/p' "$tmp/h.json" | head -1 | awk '{ printf "%.1f", $1 * 1000 }'
}
now_ms() { date +%s%3N; }
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null; }

# run_suite NAME CLI... : prints "name metric value" lines
run_suite() {
  local name=$1; shift
  local cli=("$@")
  "${cli[@]}" rm -f bx-exec bx-logs >/dev/null 2>&1
  "${cli[@]}" run -d --name bx-exec busybox sleep 600 >/dev/null || { echo "$name: cannot run containers" >&2; return 1; }
  echo "$name exec_ms $(median_ms "${cli[@]}" exec bx-exec true)"
  echo "$name stats_ms $(RUNS=5 median_ms "${cli[@]}" stats --no-stream bx-exec)"
  local t0 t1 ids=()
  t0=$(now_ms)
  for i in $(seq 50); do ids+=("$("${cli[@]}" run -d busybox sleep 600)"); done
  t1=$(now_ms)
  echo "$name run_d_50_ms_each $(( (t1 - t0) / 50 ))"
  if [ "$name" = berth ]; then
    local pid; pid=$(cat "$BERTHD_PIDFILE" 2>/dev/null)
    echo "$name daemon_rss_kb_50 $(rss_kb "$pid")"
    local total=0 n=0
    for p in $(pgrep -f berth-shim); do total=$((total + $(rss_kb "$p"))); n=$((n + 1)); done
    [ $n -gt 0 ] && echo "$name shim_rss_kb $((total / n))"
  else
    local d c
    d=$(pgrep -x dockerd | head -1); c=$(pgrep -x containerd | head -1)
    echo "$name daemon_rss_kb_50 $(( $(rss_kb "$d") + ${c:+$(rss_kb "$c")} + 0 ))"
    local total=0 n=0
    for p in $(pgrep -f containerd-shim); do total=$((total + $(rss_kb "$p"))); n=$((n + 1)); done
    [ $n -gt 0 ] && echo "$name shim_rss_kb $((total / n))"
  fi
  t0=$(now_ms)
  "${cli[@]}" rm -f "${ids[@]}" >/dev/null
  t1=$(now_ms)
  echo "$name rm_f_50_ms $((t1 - t0))"
  # 100 MB of logs in 1 KB lines (1023 x's + newline)
  "${cli[@]}" run -d --name bx-logs busybox sh -c 'yes "$(head -c 1023 /dev/zero | tr "\0" x)" | head -n 102400' >/dev/null
  "${cli[@]}" wait bx-logs >/dev/null
  t0=$(now_ms)
  local bytes; bytes=$("${cli[@]}" logs bx-logs | wc -c)
  t1=$(now_ms)
  echo "$name logs_100mb_ms $((t1 - t0))"
  [ "$bytes" -ge 104857600 ] || echo "$name logs_bytes_short $bytes" >&2
  "${cli[@]}" rm -f bx-exec bx-logs >/dev/null
}

run_suite berth "$BERTH" > "$tmp/berth.txt"
cat "$tmp/berth.txt"
if [ -x "$DOCKER" ] && "$DOCKER" version >/dev/null 2>&1 && [ "$("$DOCKER" version -f '{{.Server.Platform.Name}}' 2>/dev/null)" != berth ]; then
  run_suite docker "$DOCKER" > "$tmp/docker.txt"
  cat "$tmp/docker.txt"
  echo
  printf '%-20s %12s %12s %8s\n' metric berth docker ratio
  while read -r _ metric value; do
    other=$(awk -v m="$metric" '$2 == m {print $3}' "$tmp/docker.txt")
    ratio=$(awk -v a="$value" -v b="$other" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "-" }')
    printf '%-20s %12s %12s %8s\n' "$metric" "$value" "${other:--}" "$ratio"
  done < "$tmp/berth.txt"
else
  echo "(no docker engine answering on $DOCKER's default socket: berth figures only)"
fi
