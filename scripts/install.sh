#!/usr/bin/env bash
# Quick start: installs what berth needs, builds it, installs the binaries into /usr/local/bin,
# starts berthd (if it is not running) and loads a busybox:latest image built from Debian's
# busybox-static. Run as root from a clone of the repository.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
scripts/deps.sh
scripts/build-release.sh
install -m 0755 target/dist/berthd target/dist/berth-shim target/dist/berth-pause target/dist/berth /usr/local/bin/
sock=/run/berth/berth.sock
if ! /usr/local/bin/berth version >/dev/null 2>&1; then
    mkdir -p /var/log
    nohup /usr/local/bin/berthd >>/var/log/berthd.log 2>&1 &
    for _ in $(seq 100); do [ -S $sock ] && break; sleep 0.1; done
    [ -S $sock ] || { echo "berthd did not start; see /var/log/berthd.log" >&2; exit 1; }
    echo "berthd started (pid $(cat /run/berth/berthd.pid)), log in /var/log/berthd.log"
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
scripts/make-busybox-image.sh "$tmp/busybox.tar" busybox:latest >/dev/null
/usr/local/bin/berth load -i "$tmp/busybox.tar"
echo "ready: try  berth run --rm busybox echo hello"
