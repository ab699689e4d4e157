#!/usr/bin/env bash
# make-systemd-context.sh DIR BIN_DIR
# Writes a build context into DIR for an image that boots systemd as PID 1: the host's
# Debian systemd (PID 1, systemctl, systemd-notify and the shared libraries they load),
# busybox-static for a shell, the target units only (no services that need more binaries),
# and berth itself from BIN_DIR (berthd, berth) with contrib/systemd's units, so that
# `systemctl` in the container can drive berth.socket and berthd.service.
# Needs the systemd and busybox-static packages on the host (merged /usr, as Debian 12 has).
set -euo pipefail

[ $# -eq 2 ] || { echo "usage: $0 DIR BIN_DIR" >&2; exit 2; }
ctx=$1
bin=$2
here=$(cd "$(dirname "$0")/.." && pwd)
root=$ctx/rootfs
rm -rf "$ctx"
mkdir -p "$root"/usr/{bin,sbin,lib,lib64} "$root"/{etc,root,tmp,var/lib,var/log,run,proc,sys,dev}
chmod 1777 "$root/tmp"
for d in bin sbin lib lib64; do ln -s "usr/$d" "$root/$d"; done

# copy a file to the same path under the rootfs, keeping symlinks as symlinks (their
# targets are copied too)
put() {
  local f=$1
  while :; do
    [ -e "$root$f" ] || [ -L "$root$f" ] || {
      mkdir -p "$root$(dirname "$f")"
      cp -a "$f" "$root$f"
    }
    [ -L "$f" ] || break
    local t
    t=$(readlink "$f")
    case $t in /*) f=$t ;; *) f=$(dirname "$f")/$t ;; esac
  done
}
# an executable and every shared library it loads (ldd resolves the interpreter too)
put_elf() {
  put "$1"
  ldd "$1" 2>/dev/null | grep -o '/[^ ]*' | while read -r lib; do put "$lib"; done
}

for f in /usr/lib/systemd/systemd /usr/lib/systemd/systemd-shutdown /usr/bin/systemctl \
         /usr/bin/systemd-notify /usr/bin/systemd-run /usr/bin/journalctl; do
  put_elf "$f"
done
# systemd loads its shared core at run time
for f in /usr/lib/x86_64-linux-gnu/systemd/*.so /usr/lib/systemd/*.so; do
  [ -e "$f" ] && put_elf "$f"
done
# the unit graph up to multi-user.target: targets and slices, no services but the ones that
# end the system (`berth stop` sends SIGRTMIN+3, which systemd answers by starting halt.target)
for f in /usr/lib/systemd/system/*.target /usr/lib/systemd/system/*.slice \
         /usr/lib/systemd/system/systemd-{halt,poweroff,reboot,exit}.service; do
  put "$f"
done
rm -f "$root/usr/lib/systemd/system/default.target"
ln -s multi-user.target "$root/usr/lib/systemd/system/default.target"
mkdir -p "$root/etc/systemd/system"

# a shell and the usual tools; systemd's own binaries win over busybox's applets
cp /bin/busybox "$root/usr/bin/busybox"
/bin/busybox --list | while read -r a; do
  [ -e "$root/usr/bin/$a" ] || [ -L "$root/usr/bin/$a" ] || ln -s busybox "$root/usr/bin/$a"
done

# berth, installed as the Debian package lays it out
# (without debug info: a debug build's berthd is hundreds of megabytes)
for b in berthd berth berth-shim berth-pause; do
  [ -x "$bin/$b" ] || continue
  strip --strip-debug -o "$root/usr/bin/$b" "$bin/$b"
  ldd "$bin/$b" 2>/dev/null | grep -o '/[^ ]*' | while read -r lib; do put "$lib"; done
done
install -m 0644 "$here/contrib/systemd/berthd.service" "$here/contrib/systemd/berth.socket" \
  "$root/usr/lib/systemd/system/"

cat > "$root/etc/passwd" <<'P'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
P
cat > "$root/etc/group" <<'G'
root:x:0:
berth:x:998:
nogroup:x:65534:
G
cat > "$root/etc/os-release" <<'O'
PRETTY_NAME="berth systemd test image"
NAME="berth-systemd"
ID=debian
O
: > "$root/etc/machine-id"

cat > "$ctx/Dockerfile" <<'D'
FROM scratch
COPY rootfs/ /
ENV container=berth
STOPSIGNAL SIGRTMIN+3
CMD ["/lib/systemd/systemd"]
D
