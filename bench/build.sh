#!/usr/bin/env bash
# bench/build.sh — image builds, berth next to docker's classic builder in one run: a
# Dockerfile of 3 stages, 10 RUN steps and a COPY of 5000 small files; a cold build
# (--no-cache), a fully cached rebuild, and a rebuild after touching one copied file.
# Both engines are driven by the same docker CLI (DOCKER_BUILDKIT=0, so the client costs the
# same); `berth build` is timed too. Targets (berth/docker): cold ≤ 1/3, cached ≤ 1/10,
# touched ≤ 1/3.
#
# Runs as root. Starts its own daemons and removes them at the end: berthd from
# target/dist (scripts/build-release.sh; else target/release) and a private dockerd (own
# data-root, exec-root, socket, pidfile and bridge, --iptables=false), both with busybox
# loaded. Env: RUNS (default 3), WARMUP (default 1), DOCKER (default /usr/local/bin/docker),
# DOCKERD (default /usr/sbin/dockerd), BERTH_BIN_DIR (default target/dist).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
DOCKER=${DOCKER:-/usr/local/bin/docker}
DOCKERD=${DOCKERD:-/usr/sbin/dockerd}
BIN=${BERTH_BIN_DIR:-$repo/target/dist}
[ -x "$BIN/berthd" ] || BIN=$repo/target/release
RUNS=${RUNS:-3}
WARMUP=${WARMUP:-1}
# shellcheck source=bench/lib.sh
. "$here/lib.sh"

[ "$(id -u)" = 0 ] || { echo "bench/build.sh: run as root (it starts daemons)" >&2; exit 1; }
for b in "$BIN/berthd" "$BIN/berth" "$BIN/berth-shim" "$DOCKER"; do
  [ -x "$b" ] || { echo "bench/build.sh: $b missing (cargo build --release -p berthd -p berth -p berth-shim)" >&2; exit 1; }
done

# short paths: the shims' unix sockets live below the exec root (108-byte limit)
tmp=$(mktemp -d /tmp/bbXXXX)
tag=$(( $$ % 200 + 20 ))
bbr=bbb$$; dbr=bbd$$
berth_pid=; dockerd_pid=
cleanup() {
  [ -n "$dockerd_pid" ] && { "$DOCKER" -H "unix://$tmp/d/d.sock" rm -f $("$DOCKER" -H "unix://$tmp/d/d.sock" ps -aq 2>/dev/null) >/dev/null 2>&1; kill "$dockerd_pid" 2>/dev/null; wait "$dockerd_pid" 2>/dev/null; }
  [ -n "$berth_pid" ] && { kill "$berth_pid" 2>/dev/null; wait "$berth_pid" 2>/dev/null; }
  # whatever either left mounted below our roots
  awk -v t="$tmp" 'index($5, t) == 1 { print $5 }' /proc/self/mountinfo | sort -r |
    while read -r m; do umount -l "$m" 2>/dev/null; done
  ip link del "$dbr" 2>/dev/null; ip link del "$bbr" 2>/dev/null
  nft delete table ip "berth_$bbr" 2>/dev/null   # berthd keeps its table across restarts
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
export DOCKER_BUILDKIT=0 DOCKER_CONFIG=$tmp/cfg BERTH_CONFIG=$tmp/cfg
unset DOCKER_API_VERSION

wait_sock() { local i; for ((i = 0; i < 300; i++)); do "$DOCKER" -H "unix://$1" version >/dev/null 2>&1 && return 0; sleep 0.1; done; echo "daemon at $1 did not come up" >&2; return 1; }

echo "starting a private berthd and dockerd..."
mkdir -p "$tmp/b" "$tmp/d"
"$BIN/berthd" --data-root "$tmp/b/data" --exec-root "$tmp/r" -H "unix://$tmp/b/b.sock" \
  --pidfile "$tmp/b/pid" --bridge "$bbr" --dns 127.0.0.1 >"$tmp/b/log" 2>&1 &
berth_pid=$!
ip link add name "$dbr" type bridge && ip addr add "198.18.$tag.1/24" dev "$dbr" && ip link set "$dbr" up
"$DOCKERD" --data-root "$tmp/d/data" --exec-root "$tmp/d/exec" --pidfile "$tmp/d/pid" \
  -H "unix://$tmp/d/d.sock" --bridge "$dbr" --iptables=false --ip-masq=false >"$tmp/d/log" 2>&1 &
dockerd_pid=$!
wait_sock "$tmp/b/b.sock" || { tail "$tmp/b/log"; exit 1; }
wait_sock "$tmp/d/d.sock" || { tail "$tmp/d/log"; exit 1; }
bash "$repo/scripts/make-busybox-image.sh" "$tmp/bb.tar" >/dev/null
"$DOCKER" -H "unix://$tmp/b/b.sock" load -i "$tmp/bb.tar" >/dev/null
"$DOCKER" -H "unix://$tmp/d/d.sock" load -i "$tmp/bb.tar" >/dev/null

ctx=$tmp/ctx
mkdir -p "$ctx/files"
for i in $(seq 1 5000); do
  d=$ctx/files/d$((i % 50))
  [ -d "$d" ] || mkdir -p "$d"
  echo "file $i" >"$d/f$i.txt"
done
cat >"$ctx/Dockerfile" <<'EOF'
FROM busybox AS base
RUN echo one > /one
RUN echo two > /two
RUN mkdir -p /opt/app && echo three > /opt/app/three

FROM base AS build
COPY files /src
RUN find /src -type f | wc -l > /count
RUN cat /count
RUN echo built > /opt/app/built
RUN ls /src | head -3

FROM base
COPY --from=build /count /count
RUN cat /count
RUN echo final > /final
RUN test -f /one
CMD ["cat", "/count"]
EOF

# one build: CLI words..., with the one copied file touched first when $1 is "touch"
cat >"$tmp/one.sh" <<'EOF'
#!/bin/sh
[ "$1" = touch ] && echo "touched $(date +%s%N)" >"$CTX/files/d7/f7.txt"
shift
exec "$@" -q -t bench-build:1 "$CTX" >/dev/null
EOF
chmod +x "$tmp/one.sh"
export CTX=$ctx

suite() {
  local name=$1; shift
  "$@" -q -t bench-build:1 "$ctx" >/dev/null || { echo "$name: the first build failed" >&2; return 1; }
  echo "$name cold_ms $(median_ms "$name-cold" "$tmp/one.sh" - "$@" --no-cache)"
  echo "$name cached_ms $(median_ms "$name-cached" "$tmp/one.sh" - "$@")"
  echo "$name touched_one_file_ms $(median_ms "$name-touched" "$tmp/one.sh" touch "$@")"
}

suite berth "$DOCKER" -H "unix://$tmp/b/b.sock" build >"$tmp/berth.txt"; cat "$tmp/berth.txt"
suite berth-cli "$BIN/berth" -H "unix://$tmp/b/b.sock" build >"$tmp/berth-cli.txt"; cat "$tmp/berth-cli.txt"
suite docker "$DOCKER" -H "unix://$tmp/d/d.sock" build >"$tmp/docker.txt"; cat "$tmp/docker.txt"
echo
printf '%-22s %10s %10s %10s %8s %8s\n' metric berth berth-cli docker ratio target
for metric in cold_ms cached_ms touched_one_file_ms; do
  b=$(awk -v m="$metric" '$2 == m {print $3}' "$tmp/berth.txt")
  c=$(awk -v m="$metric" '$2 == m {print $3}' "$tmp/berth-cli.txt")
  k=$(awk -v m="$metric" '$2 == m {print $3}' "$tmp/docker.txt")
  case $metric in cached_ms) t=0.100 ;; *) t=0.333 ;; esac
  printf '%-22s %10s %10s %10s %8s %8s\n' "$metric" "${b:--}" "${c:--}" "${k:--}" "$(ratio "${b:-0}" "${k:-0}")" "$t"
done
