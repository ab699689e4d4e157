#!/usr/bin/env bash
# Quick start: installs what berth needs, builds it, builds and installs the Debian package
# (scripts/deb.sh), starts the engine — through berth.socket when systemd runs this machine,
# else berthd directly — and loads a busybox:latest image built from Debian's busybox-static.
# Run as root from a clone of the repository.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
scripts/deps.sh
scripts/build-release.sh
deb=$(scripts/deb.sh)
# an earlier quick start put the binaries in /usr/local/bin (ahead of /usr/bin in PATH): stop
# that daemon gracefully (its containers keep running; the new one takes them over) and
# remove those copies
if [ -x /usr/local/bin/berthd ]; then
    old=$(cat /run/berth/berthd.pid 2>/dev/null || true)
    if [ -n "$old" ] && [ "$(cat "/proc/$old/comm" 2>/dev/null)" = berthd ]; then
        kill -TERM "$old"
        for _ in $(seq 100); do kill -0 "$old" 2>/dev/null || break; sleep 0.1; done
    fi
    rm -f /usr/local/bin/berth /usr/local/bin/berthd /usr/local/bin/berth-shim /usr/local/bin/berth-pause
fi
dpkg -i "$deb"
if [ -d /run/systemd/system ]; then
    # postinst enabled and started berth.socket: the first request starts berthd
    systemctl enable --now berth.socket
elif ! /usr/bin/berth version >/dev/null 2>&1; then
    mkdir -p /var/log
    nohup /usr/bin/berthd >>/var/log/berthd.log 2>&1 &
    pid=$!
    # the socket may be left from a daemon that did not stop cleanly: wait for an answer
    for _ in $(seq 200); do /usr/bin/berth version >/dev/null 2>&1 && break; sleep 0.1; done
    /usr/bin/berth version >/dev/null 2>&1 || { echo "berthd did not start; see /var/log/berthd.log" >&2; exit 1; }
    echo "berthd started (pid $pid), log in /var/log/berthd.log"
fi
/usr/bin/berth version >/dev/null
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
scripts/make-busybox-image.sh "$tmp/busybox.tar" busybox:latest >/dev/null
/usr/bin/berth load -i "$tmp/busybox.tar"
echo "ready: try  berth run --rm busybox echo hello"
