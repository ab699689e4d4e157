#!/usr/bin/env bash
# bench/build.sh — `docker build` (the classic builder, DOCKER_BUILDKIT=0), berth next to
# docker, both driven by the same docker CLI: a Dockerfile of 3 stages, 10 RUN steps and a
# COPY of 5000 small files; a cold build (--no-cache), a fully cached rebuild, and a rebuild
# after touching one copied file. Median of RUNS runs each.
# Env: BERTH_HOST (default unix:///run/berth/berth.sock), DOCKER (default /usr/local/bin/docker),
#      DOCKER_ENGINE_HOST (default unix:///var/run/docker.sock), RUNS (default 3).
#      Needs busybox:latest in each.
set -uo pipefail
DOCKER=${DOCKER:-/usr/local/bin/docker}
BERTH_HOST=${BERTH_HOST:-unix:///run/berth/berth.sock}
DOCKER_ENGINE_HOST=${DOCKER_ENGINE_HOST:-unix:///var/run/docker.sock}
RUNS=${RUNS:-3}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export DOCKER_BUILDKIT=0

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

ms() { local t0 t1; t0=$(date +%s%N); "$@" >"$tmp/last.log" 2>&1 || { echo "failed: $*" >&2; tail -5 "$tmp/last.log" >&2; }; t1=$(date +%s%N); echo $(( (t1 - t0) / 1000000 )); }
median() { sort -n | awk '{ a[NR] = $1 } END { m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2; print m }'; }

suite() {
  local name=$1 host=$2
  local d=("$DOCKER" -H "$host")
  local cold=() cached=() touched=() i
  for ((i = 0; i < RUNS; i++)); do
    cold+=("$(ms "${d[@]}" build --no-cache -q -t bench-build:1 "$ctx")")
    cached+=("$(ms "${d[@]}" build -q -t bench-build:1 "$ctx")")
    echo "touched $i $RANDOM" >"$ctx/files/d7/f7.txt"
    touched+=("$(ms "${d[@]}" build -q -t bench-build:1 "$ctx")")
  done
  echo "$name cold_ms $(printf '%s\n' "${cold[@]}" | median)"
  echo "$name cached_ms $(printf '%s\n' "${cached[@]}" | median)"
  echo "$name touched_one_file_ms $(printf '%s\n' "${touched[@]}" | median)"
  "${d[@]}" rmi -f bench-build:1 >/dev/null 2>&1
}

suite berth "$BERTH_HOST" >"$tmp/berth.txt"; cat "$tmp/berth.txt"
if "$DOCKER" -H "$DOCKER_ENGINE_HOST" version >/dev/null 2>&1; then
  suite docker "$DOCKER_ENGINE_HOST" >"$tmp/docker.txt"; cat "$tmp/docker.txt"
  echo
  printf '%-22s %10s %10s %8s\n' metric berth docker ratio
  while read -r _ metric value; do
    other=$(awk -v m="$metric" '$2 == m {print $3}' "$tmp/docker.txt")
    printf '%-22s %10s %10s %8s\n' "$metric" "$value" "${other:--}" "$(awk -v a="$value" -v b="$other" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "-" }')"
  done <"$tmp/berth.txt"
else
  echo "(no docker engine at $DOCKER_ENGINE_HOST: berth figures only)"
fi
