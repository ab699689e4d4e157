#!/usr/bin/env bash
# bench/images.sh — image and filesystem operations, berth next to docker, both driven by the
# same docker CLI (so the client costs the same): import / save / load of a ≥ 200 MB image
# (Python stdlib, /usr/share/doc, vim runtime and busybox: about 8k files), commit and export
# of a container that wrote 100 MB.
# Env: BERTH_HOST (default unix:///run/berth/berth.sock), DOCKER (default /usr/local/bin/docker),
#      DOCKER_ENGINE_HOST (default unix:///var/run/docker.sock). Needs busybox:latest in each.
set -uo pipefail
DOCKER=${DOCKER:-/usr/local/bin/docker}
BERTH_HOST=${BERTH_HOST:-unix:///run/berth/berth.sock}
DOCKER_ENGINE_HOST=${DOCKER_ENGINE_HOST:-unix:///var/run/docker.sock}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "building the test image tarball..."
mkdir -p "$tmp/root/bin"
cp /bin/busybox "$tmp/root/bin/"
for d in /usr/lib/python3.11 /usr/lib/python3 /usr/share/doc /usr/share/vim; do
  [ -d "$d" ] && mkdir -p "$tmp/root$(dirname "$d")" && cp -a "$d" "$tmp/root$d"
done
tar -C "$tmp/root" -cf "$tmp/big.tar" .
rm -rf "$tmp/root"
echo "big.tar: $(( $(stat -c %s "$tmp/big.tar") / 1000000 )) MB, $(tar -tf "$tmp/big.tar" | wc -l) entries"

ms() { local t0 t1; t0=$(date +%s%N); "$@" >/dev/null 2>&1 || echo "failed: $*" >&2; t1=$(date +%s%N); echo $(( (t1 - t0) / 1000000 )); }

suite() {
  local name=$1 host=$2
  local d=("$DOCKER" -H "$host")
  "${d[@]}" rm -f bi-w >/dev/null 2>&1; "${d[@]}" rmi -f big:1 w:1 >/dev/null 2>&1
  echo "$name import_ms $(ms "${d[@]}" import "$tmp/big.tar" big:1)"
  echo "$name save_ms $(ms "${d[@]}" save -o "$tmp/$name-save.tar" big:1)"
  "${d[@]}" rmi big:1 >/dev/null
  echo "$name load_ms $(ms "${d[@]}" load -i "$tmp/$name-save.tar")"
  "${d[@]}" run --name bi-w busybox sh -c 'head -c 100000000 /dev/urandom > /data.bin' >/dev/null
  echo "$name commit_100mb_ms $(ms "${d[@]}" commit bi-w w:1)"
  local t0 t1; t0=$(date +%s%N); "${d[@]}" export bi-w > "$tmp/$name-export.tar"; t1=$(date +%s%N)
  echo "$name export_ms $(( (t1 - t0) / 1000000 ))"
  "${d[@]}" rm -f bi-w >/dev/null; "${d[@]}" rmi -f big:1 w:1 >/dev/null
  rm -f "$tmp/$name-save.tar" "$tmp/$name-export.tar"
}

suite berth "$BERTH_HOST" > "$tmp/berth.txt"; cat "$tmp/berth.txt"
if "$DOCKER" -H "$DOCKER_ENGINE_HOST" version >/dev/null 2>&1; then
  suite docker "$DOCKER_ENGINE_HOST" > "$tmp/docker.txt"; cat "$tmp/docker.txt"
  echo
  printf '%-18s %10s %10s %8s\n' metric berth docker ratio
  while read -r _ metric value; do
    other=$(awk -v m="$metric" '$2 == m {print $3}' "$tmp/docker.txt")
    printf '%-18s %10s %10s %8s\n' "$metric" "$value" "${other:--}" "$(awk -v a="$value" -v b="$other" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "-" }')"
  done < "$tmp/berth.txt"
else
  echo "(no docker engine at $DOCKER_ENGINE_HOST: berth figures only)"
fi
