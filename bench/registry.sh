#!/usr/bin/env bash
# bench/registry.sh — push, pull and re-pull of the image of bench/images.sh (Python stdlib,
# /usr/share/doc, vim runtime and busybox in one layer: ~250 MB, ~12k files), berth next to
# docker, both driven by the same docker CLI against one registry (Debian's docker-registry,
# started here on 127.0.0.1 with its storage on tmpfs when /dev/shm has room).
#   push:    each engine pushes the image it imported (it compresses the layer)
#   pull:    each engine pulls the image docker pushed, after removing it
#   re-pull: the same pull again, with the image present (one manifest request to the registry):
#     repull_ms           the docker CLI against each daemon
#     repull_own_cli_ms   each engine's own CLI: `berth pull` against berthd, `docker pull`
#                         against dockerd
#     repull_turns_ms     the same with nothing between the runs: each engine's run right after
#                         the other's, and what the other left running (dockerd's after-work) in
#                         its time, as `farm-bench --vs` pairs them
#     repull_cold_ms      the same, each run after the machine was idle for 0.3 s (as a command
#                         typed by hand finds it: sleeping processors, daemons parked)
#     repull_req_ms       the API request alone: curl's time_total of requests 2..n sent over
#                         one connection (no process start, no connect)
#   docker_cli_floor_ms, own_cli_floor_ms: `docker version` through the docker CLI, and
#     `berth version` / `docker version` through each engine's own CLI: what a CLI process
#     costs with one API request and no pull work.
#   The floors, the registry's part alone: registry_get_ms (_turns_ms, _cold_ms), a `busybox wget`
#     process that makes just the one manifest request a re-pull needs, straight to the
#     registry; registry_req_ms, that request sent by curl on an open connection (the floor of
#     repull_req_ms). Each is printed next to docker's figure of the same kind: its ratio is
#     the best any engine could show, daemon or not.
# Each push and pull figure is the median of RUNS runs (default 3). The re-pull figures are
# medians of 5*RUNS runs (cold: 2*RUNS), timed by bench/spawn-times.py: the commands take turns,
# each started by posix_spawn, each timed run (warm) right after an untimed run of the same
# command; see that file for why not bash's clock around each command.
# Env: BERTH_HOST (default unix:///run/berth/berth.sock), DOCKER (default /usr/local/bin/docker),
#      DOCKER_ENGINE_HOST (default unix:///var/run/docker.sock), RUNS,
#      REPULL_ONLY=1 (the re-pull figures only: one pull each to have the image, no push),
#      BERTH (the berth CLI; default target/dist/berth of this checkout (scripts/build-release.sh),
#      else `berth`).
set -uo pipefail
DOCKER=${DOCKER:-/usr/local/bin/docker}
BERTH_HOST=${BERTH_HOST:-unix:///run/berth/berth.sock}
DOCKER_ENGINE_HOST=${DOCKER_ENGINE_HOST:-unix:///var/run/docker.sock}
RUNS=${RUNS:-3}
REPULL_ONLY=${REPULL_ONLY:-0}
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

# push and pull (seconds each): the clock is bash's own (EPOCHREALTIME), no `date` process
# around each sample; the re-pulls (milliseconds) are timed by bench/spawn-times.py
ms() { local t0 t1; t0=${EPOCHREALTIME/./}; "$@" >/dev/null 2>&1 || echo "failed: $*" >&2; t1=${EPOCHREALTIME/./}; awk -v d=$(( t1 - t0 )) 'BEGIN { printf "%.2f\n", d / 1000 }'; }
jarr() { python3 -c 'import json, sys; print(json.dumps(sys.argv[1:]))' "$@"; }
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
  for ((i = 0; i < RUNS_PULL; i++)); do
    "${d[@]}" rmi -f "$REG/src/big:1" >/dev/null 2>&1
    ms "${d[@]}" pull "$REG/src/big:1"
  done | median | sed "s/^/$name pull_ms /"
}

# the re-pull figures of the engines given as name=host (berth first), from bench/spawn-times.py
repull_suite() {
  local e name host sock i m ref="$REG/src/big:1"
  local url="http://x/images/create?fromImage=$REG/src/big&tag=1"
  local mt
  mt=$(curl -sf -o /dev/null -w '%{content_type}' -H "Accept: application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json" "http://$REG/v2/src/big/manifests/1")
  local get=(/bin/busybox wget -q -O /dev/null --header "Accept: $mt" "http://$REG/v2/src/big/manifests/1")
  local docker_pull=()
  for m in warm turns turns2 cold; do : >"$tmp/$m.cmds"; : >"$tmp/$m.names"; done
  add() { local f=$1 metric=$2; shift 2; jarr "$@" >>"$tmp/$f.cmds"; echo "$metric" >>"$tmp/$f.names"; }
  for e in "$@"; do
    name=${e%%=*} host=${e#*=}
    local own=("$DOCKER" -H "$host")
    [ "$name" = berth ] && own=("$BERTH" -H "$host")
    add warm "$name repull_own_cli_ms" "${own[@]}" pull "$ref"
    add cold "$name repull_cold_ms" "${own[@]}" pull "$ref"
    add turns "$name repull_turns_ms" "${own[@]}" pull "$ref"
    [ "$name" = docker ] && docker_pull=("${own[@]}" pull "$ref")
    [ "$name" = berth ] && add warm "$name repull_ms" "$DOCKER" -H "$host" pull "$ref"
    add warm "$name own_cli_floor_ms" "${own[@]}" version
    [ "$name" = berth ] && add warm "$name docker_cli_floor_ms" "$DOCKER" -H "$host" version
  done
  if [ -x /bin/busybox ]; then
    add warm "floor registry_get_ms" "${get[@]}"
    add cold "floor registry_get_cold_ms" "${get[@]}"
    # taking turns with docker's re-pull, as berth's does (docker's times here are dropped)
    add turns2 "floor registry_get_turns_ms" "${get[@]}"
    [ ${#docker_pull[@]} -gt 0 ] && add turns2 "skip -" "${docker_pull[@]}"
  fi
  python3 "$here/bench/spawn-times.py" $((5 * RUNS)) warm "$tmp/warm.cmds" >"$tmp/warm.out"
  python3 "$here/bench/spawn-times.py" $((5 * RUNS)) turns "$tmp/turns.cmds" >"$tmp/turns.out"
  python3 "$here/bench/spawn-times.py" $((5 * RUNS)) turns "$tmp/turns2.cmds" >"$tmp/turns2.out"
  python3 "$here/bench/spawn-times.py" $((2 * RUNS)) cold:0.3 "$tmp/cold.cmds" >"$tmp/cold.out"
  for m in warm turns turns2 cold; do
    [ -s "$tmp/$m.cmds" ] || continue
    i=0
    while read -r name metric; do
      echo "$name $metric $(awk -v k=$i '$1 == k { printf "%.2f\n", $2 }' "$tmp/$m.out" | median)"
      i=$((i + 1))
    done <"$tmp/$m.names"
  done | grep -v '^skip ' >"$tmp/repull.txt"
  # docker's re-pull through the docker CLI is its own-CLI figure
  awk '$1 == "docker" && $2 == "repull_own_cli_ms" { print "docker repull_ms " $3 }' "$tmp/repull.txt" >>"$tmp/repull.txt"
  awk '$1 == "docker" && $2 == "own_cli_floor_ms" { print "docker docker_cli_floor_ms " $3 }' "$tmp/repull.txt" >>"$tmp/repull.txt"
  # the API request alone: 4 requests on one connection, the first left out, engines in turn
  for ((i = 0; i < 5 * RUNS; i++)); do
    for e in "$@"; do
      name=${e%%=*} sock=${e#*=unix://}
      local urls=()
      for ((m = 0; m < 4; m++)); do urls+=(-o /dev/null "$url"); done
      curl -s --unix-socket "$sock" -X POST -w '%{time_total}\n' "${urls[@]}" | tail -n +2 |
        awk '{ printf "%.2f\n", $1 * 1000 }' >>"$tmp/$name.repull_req_ms"
    done
  done
  # its floor: the registry's own answer, the same way (straight to the registry)
  for ((i = 0; i < 5 * RUNS; i++)); do
    local urls=()
    for ((m = 0; m < 4; m++)); do urls+=(-o /dev/null "http://$REG/v2/src/big/manifests/1"); done
    curl -s -H "Accept: $mt" -w '%{time_total}\n' "${urls[@]}" | tail -n +2 |
      awk '{ printf "%.2f\n", $1 * 1000 }' >>"$tmp/floor.registry_req_ms"
  done
  echo "floor registry_req_ms $(median <"$tmp/floor.registry_req_ms")" >>"$tmp/repull.txt"
  for e in "$@"; do
    name=${e%%=*}
    echo "$name repull_req_ms $(median <"$tmp/$name.repull_req_ms")" >>"$tmp/repull.txt"
  done
  for e in "$@"; do
    name=${e%%=*}
    for m in repull_ms repull_own_cli_ms repull_turns_ms repull_cold_ms repull_req_ms docker_cli_floor_ms own_cli_floor_ms; do
      awk -v n="$name" -v m="$m" '$1 == n && $2 == m { print }' "$tmp/repull.txt"
    done >>"$tmp/$name.txt"
  done
  grep '^floor ' "$tmp/repull.txt" >"$tmp/floor.txt" || true
}

have_docker=0
"$DOCKER" -H "$DOCKER_ENGINE_HOST" version >/dev/null 2>&1 && have_docker=1
: >"$tmp/docker.txt"; : >"$tmp/berth.txt"
if [ "$REPULL_ONLY" = 1 ]; then
  RUNS_PULL=1
else
  RUNS_PULL=$RUNS
  [ $have_docker = 1 ] && push_suite docker "$DOCKER_ENGINE_HOST" > "$tmp/docker.txt"
  push_suite berth "$BERTH_HOST" > "$tmp/berth.txt"
fi
# the image both pull: pushed by docker (by berth without a docker engine)
src_host=$BERTH_HOST; [ $have_docker = 1 ] && src_host=$DOCKER_ENGINE_HOST
fresh_registry
"$DOCKER" -H "$src_host" import "$tmp/big.tar" "$REG/src/big:1" >/dev/null
"$DOCKER" -H "$src_host" push "$REG/src/big:1" >/dev/null || echo "failed: the source push" >&2
"$DOCKER" -H "$src_host" rmi -f "$REG/src/big:1" >/dev/null 2>&1
pull_suite berth "$BERTH_HOST" >> "$tmp/berth.txt"
[ "$REPULL_ONLY" = 1 ] && sed -i '/ pull_ms /d' "$tmp/berth.txt"
if [ $have_docker = 1 ]; then
  pull_suite docker "$DOCKER_ENGINE_HOST" >> "$tmp/docker.txt"
  [ "$REPULL_ONLY" = 1 ] && sed -i '/ pull_ms /d' "$tmp/docker.txt"
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
  # the floor next to docker's re-pull of the same regime
  while read -r _ metric value; do
    case $metric in
      registry_get_cold_ms) d=repull_cold_ms ;;
      registry_get_turns_ms) d=repull_turns_ms ;;
      registry_req_ms) d=repull_req_ms ;;
      *) d=repull_own_cli_ms ;;
    esac
    other=$(awk -v m="$d" '$2 == m {print $3}' "$tmp/docker.txt")
    printf '%-20s %10s %10s %8s\n' "$metric" "$value" "${other:--}" "$(awk -v a="$value" -v b="$other" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "-" }')"
  done < "$tmp/floor.txt"
else
  cat "$tmp/floor.txt"
  echo "(no docker engine at $DOCKER_ENGINE_HOST: berth figures only)"
fi
