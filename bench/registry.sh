#!/usr/bin/env bash
# bench/registry.sh — push, pull and re-pull of the image of bench/images.sh (Python stdlib,
# /usr/share/doc, vim runtime and busybox in one layer: ~250 MB, ~12k files), berth next to
# docker, both driven by the same docker CLI against one registry (Debian's docker-registry,
# started here on 127.0.0.1 with its storage on tmpfs when /dev/shm has room).
#   push:    each engine pushes the image it imported (it compresses the layer)
#   pull:    each engine pulls the image docker pushed, after removing it
#   re-pull: the same pull again, with the image present, measured four ways:
#     repull_ms           the docker CLI against each daemon
#     repull_own_cli_ms   each engine's own CLI: `berth pull` against berthd, `docker pull`
#                         against dockerd
#     repull_api_ms       one API request by a curl process (its ~5 ms start included)
#     repull_req_ms       the API request alone: curl's time_total of requests 2..n sent over
#                         one connection (no process start, no connect)
#   docker_cli_floor_ms, own_cli_floor_ms: `docker version` through the docker CLI, and
#     `berth version` / `docker version` through each engine's own CLI: what a CLI process
#     costs with one API request and no pull work (a re-pull through it cannot be faster).
# Each figure is the median of RUNS runs (default 3); the re-pull figures of 5*RUNS, both
# engines interleaved.
# Env: BERTH_HOST (default unix:///run/berth/berth.sock), DOCKER (default /usr/local/bin/docker),
#      DOCKER_ENGINE_HOST (default unix:///var/run/docker.sock), RUNS,
#      BERTH (the berth CLI; default target/dist/berth of this checkout (scripts/build-release.sh),
#      else `berth`).
set -uo pipefail
DOCKER=${DOCKER:-/usr/local/bin/docker}
BERTH_HOST=${BERTH_HOST:-unix:///run/berth/berth.sock}
DOCKER_ENGINE_HOST=${DOCKER_ENGINE_HOST:-unix:///var/run/docker.sock}
RUNS=${RUNS:-3}
here=$(cd "$(dirname "$0")/.." && pwd)
BERTH=${BERTH:-$here/target/dist/berth}
[ -x "$BERTH" ] || BERTH=$(command -v berth || echo berth)
tmp=$(mktemp -d)
regdir=$(mktemp -d /dev/shm/bench-reg.XXXXXX 2>/dev/null || mktemp -d)
# the registry's pid is kept in a file: fresh_registry runs in pipelines' subshells too
stop_registry() {
  local p
  p=$(cat "$tmp/reg.pid" 2>/dev/null) || return 0
  kill "$p" 2>/dev/null
  while kill -0 "$p" 2>/dev/null; do sleep 0.05; done
  rm -f "$tmp/reg.pid"
}
cleanup() { stop_registry; rm -rf "$tmp" "$regdir"; }
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
REG=127.0.0.1:$port
cat > "$tmp/reg.yml" <<YML
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $regdir
  delete:
    enabled: true
http:
  addr: $REG
YML
# a registry with empty storage (so no blob is already there or mountable)
fresh_registry() {
  stop_registry
  rm -rf "${regdir:?}"/*
  /usr/bin/docker-registry serve "$tmp/reg.yml" >>"$tmp/reg.log" 2>&1 &
  echo $! > "$tmp/reg.pid"
  for _ in $(seq 100); do curl -sf "http://$REG/v2/" >/dev/null && return; sleep 0.1; done
  echo "the registry did not come up" >&2; exit 1
}

echo "building the test image tarball..."
mkdir -p "$tmp/root/bin"
cp /bin/busybox "$tmp/root/bin/"
for d in /usr/lib/python3.11 /usr/lib/python3 /usr/share/doc /usr/share/vim; do
  [ -d "$d" ] && mkdir -p "$tmp/root$(dirname "$d")" && cp -a "$d" "$tmp/root$d"
done
tar -C "$tmp/root" -cf "$tmp/big.tar" .
rm -rf "$tmp/root"
echo "big.tar: $(( $(stat -c %s "$tmp/big.tar") / 1000000 )) MB, $(tar -tf "$tmp/big.tar" | wc -l) entries"

# the clock is bash's own (EPOCHREALTIME): a `date` process around each sample would add its
# ~1 ms fork+exec to every figure, as much as a whole re-pull costs berth
ms() { local t0 t1; t0=${EPOCHREALTIME/./}; "$@" >/dev/null 2>&1 || echo "failed: $*" >&2; t1=${EPOCHREALTIME/./}; awk -v d=$(( t1 - t0 )) 'BEGIN { printf "%.2f\n", d / 1000 }'; }
median() { sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

# push: the imported image into an empty registry each run
push_suite() {
  local name=$1 host=$2 i
  local d=("$DOCKER" -H "$host")
  "${d[@]}" rmi -f big:1 >/dev/null 2>&1
  "${d[@]}" import "$tmp/big.tar" big:1 >/dev/null
  "${d[@]}" tag big:1 "$REG/$name/big:1"
  for ((i = 0; i < RUNS; i++)); do
    fresh_registry
    ms "${d[@]}" push "$REG/$name/big:1"
  done | median | sed "s/^/$name push_ms /"
  "${d[@]}" rmi -f "$REG/$name/big:1" big:1 >/dev/null 2>&1
}

# pull of the image docker pushed (src), removed before each run; it stays for the re-pulls
pull_suite() {
  local name=$1 host=$2 i
  local d=("$DOCKER" -H "$host")
  for ((i = 0; i < RUNS; i++)); do
    "${d[@]}" rmi -f "$REG/src/big:1" >/dev/null 2>&1
    ms "${d[@]}" pull "$REG/src/big:1"
  done | median | sed "s/^/$name pull_ms /"
}

# one sample of every re-pull figure for engine $1 at $2, appended to $tmp/$1.<metric>
repull_sample() {
  local name=$1 host=$2 n
  local sock=${host#unix://}
  local own=("$DOCKER" -H "$host")
  [ "$name" = berth ] && own=("$BERTH" -H "$host")
  local url="http://x/images/create?fromImage=$REG/src/big&tag=1"
  ms "$DOCKER" -H "$host" pull "$REG/src/big:1" >>"$tmp/$name.repull_ms"
  ms "${own[@]}" pull "$REG/src/big:1" >>"$tmp/$name.repull_own_cli_ms"
  ms curl -sf --unix-socket "$sock" -X POST "$url" >>"$tmp/$name.repull_api_ms"
  # the API request without curl's start: 4 requests on one connection, the first left out
  local urls=()
  for ((n = 0; n < 4; n++)); do urls+=(-o /dev/null "$url"); done
  curl -s --unix-socket "$sock" -X POST -w '%{time_total}\n' "${urls[@]}" | tail -n +2 |
    awk '{ printf "%.2f\n", $1 * 1000 }' >>"$tmp/$name.repull_req_ms"
  # what the CLIs cost before any work: one API request each
  ms "$DOCKER" -H "$host" version >>"$tmp/$name.docker_cli_floor_ms"
  ms "${own[@]}" version >>"$tmp/$name.own_cli_floor_ms"
}

# the re-pulls of both engines interleaved (the machine's load hits both alike)
repull_suite() {
  local i e
  for ((i = 0; i < 5 * RUNS; i++)); do
    for e in "$@"; do repull_sample "${e%%=*}" "${e#*=}"; done
  done
  for e in "$@"; do
    for m in repull_ms repull_own_cli_ms repull_api_ms repull_req_ms docker_cli_floor_ms own_cli_floor_ms; do
      echo "${e%%=*} $m $(median <"$tmp/${e%%=*}.$m")"
    done >>"$tmp/${e%%=*}.txt"
  done
}

have_docker=0
"$DOCKER" -H "$DOCKER_ENGINE_HOST" version >/dev/null 2>&1 && have_docker=1
[ $have_docker = 1 ] && push_suite docker "$DOCKER_ENGINE_HOST" > "$tmp/docker.txt"
push_suite berth "$BERTH_HOST" > "$tmp/berth.txt"
# the image both pull: pushed by docker (by berth without a docker engine)
src_host=$BERTH_HOST; [ $have_docker = 1 ] && src_host=$DOCKER_ENGINE_HOST
fresh_registry
"$DOCKER" -H "$src_host" import "$tmp/big.tar" "$REG/src/big:1" >/dev/null
"$DOCKER" -H "$src_host" push "$REG/src/big:1" >/dev/null || echo "failed: the source push" >&2
"$DOCKER" -H "$src_host" rmi -f "$REG/src/big:1" >/dev/null 2>&1
pull_suite berth "$BERTH_HOST" >> "$tmp/berth.txt"
if [ $have_docker = 1 ]; then
  pull_suite docker "$DOCKER_ENGINE_HOST" >> "$tmp/docker.txt"
  repull_suite "berth=$BERTH_HOST" "docker=$DOCKER_ENGINE_HOST"
else
  repull_suite "berth=$BERTH_HOST"
fi
for h in "$BERTH_HOST" "$DOCKER_ENGINE_HOST"; do "$DOCKER" -H "$h" rmi -f "$REG/src/big:1" >/dev/null 2>&1; done
cat "$tmp/berth.txt"
if [ $have_docker = 1 ]; then
  cat "$tmp/docker.txt"
  echo
  printf '%-20s %10s %10s %8s\n' metric berth docker ratio
  while read -r _ metric value; do
    other=$(awk -v m="$metric" '$2 == m {print $3}' "$tmp/docker.txt")
    printf '%-20s %10s %10s %8s\n' "$metric" "$value" "${other:--}" "$(awk -v a="$value" -v b="$other" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "-" }')"
  done < "$tmp/berth.txt"
else
  echo "(no docker engine at $DOCKER_ENGINE_HOST: berth figures only)"
fi
