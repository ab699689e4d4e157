#!/usr/bin/env bash
# make-busybox-image.sh OUT.tar [TAG]
# Builds a docker-archive (the layout `docker save` writes) holding one image:
# Debian's busybox-static on an otherwise empty rootfs. Reproducible: the same
# busybox binary gives the same layer and config digests.
# Needs only bash, coreutils, tar and sha256sum (and apt-get if busybox is missing).
set -euo pipefail

usage() { echo "usage: $0 OUT.tar [TAG]   (default tag busybox:latest)" >&2; exit 2; }
[ $# -ge 1 ] && [ $# -le 2 ] || usage
out=$1
tag=${2:-busybox:latest}
case $tag in
  *:*) repo=${tag%:*}; ver=${tag##*:} ;;
  *)   repo=$tag; ver=latest ;;
esac
# "localhost:5000/x" has a ':' in the registry part only: no tag there.
case $ver in */*) repo=$tag; ver=latest ;; esac
tag="$repo:$ver"

bb=/bin/busybox
if [ ! -x "$bb" ]; then
  if [ -x /usr/bin/busybox ] && dpkg -s busybox-static >/dev/null 2>&1; then
    bb=/usr/bin/busybox
  else
    apt-get install -y busybox-static >&2
    bb=/bin/busybox
  fi
fi
# Must be the static build: a dynamic busybox would not run in an empty rootfs.
if dpkg -S "$(readlink -f "$bb")" 2>/dev/null | grep -qv '^busybox-static'; then
  echo "$0: warning: $bb does not come from busybox-static" >&2
fi
bbver=$(dpkg-query -W -f '${Version}' busybox-static 2>/dev/null || true)
[ -n "$bbver" ] || bbver=$("$bb" 2>&1 | head -1 | sed -n 's/^BusyBox v\([^ ]*\).*/\1/p')

created="2024-01-01T00:00:00Z"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/rootfs
mkdir -p "$root"/{bin,etc,root,home,var,usr,dev,proc,sys,tmp}
chmod 1777 "$root/tmp"
chmod 700 "$root/root"
cp "$bb" "$root/bin/busybox"
chmod 755 "$root/bin/busybox"
"$bb" --list | sort -u | while read -r applet; do
  [ -n "$applet" ] && [ "$applet" != busybox ] || continue
  ln -s busybox "$root/bin/$applet"
done
cat > "$root/etc/passwd" <<'P'
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
bin:x:2:2:bin:/bin:/bin/false
sys:x:3:3:sys:/dev:/bin/false
sync:x:4:100:sync:/bin:/bin/sync
mail:x:8:8:mail:/var/spool/mail:/bin/false
www-data:x:33:33:www-data:/var/www:/bin/false
operator:x:37:37:Operator:/var:/bin/false
nobody:x:65534:65534:nobody:/home:/bin/false
P
cat > "$root/etc/group" <<'G'
root:x:0:
daemon:x:1:
bin:x:2:
sys:x:3:
adm:x:4:
tty:x:5:
disk:x:6:
wheel:x:10:root
mail:x:8:
www-data:x:33:
operator:x:37:
staff:x:50:
users:x:100:
nogroup:x:65534:
G
chmod 644 "$root/etc/passwd" "$root/etc/group"
chmod 755 "$root"/{bin,etc,home,var,usr,dev,proc,sys}
# Directory mtimes do not matter: --mtime=@0 fixes every entry.
(cd "$root" && tar --numeric-owner --owner=0 --group=0 --sort=name --mtime=@0 \
   --format=gnu -cf "$work/layer.tar" .)
layerhex=$(sha256sum "$work/layer.tar" | cut -d' ' -f1)

img=$work/image
mkdir -p "$img/$layerhex"
mv "$work/layer.tar" "$img/$layerhex/layer.tar"
printf '%s' \
 '{"architecture":"amd64","os":"linux","created":"'"$created"'",' \
 '"config":{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["sh"]},' \
 '"rootfs":{"type":"layers","diff_ids":["sha256:'"$layerhex"'"]},' \
 '"history":[{"created":"'"$created"'","created_by":"berth make-busybox-image (busybox-static '"$bbver"')"}]}' \
 > "$work/config.json"
confighex=$(sha256sum "$work/config.json" | cut -d' ' -f1)
mv "$work/config.json" "$img/$confighex.json"
printf '[{"Config":"%s.json","RepoTags":["%s"],"Layers":["%s/layer.tar"]}]' \
  "$confighex" "$tag" "$layerhex" > "$img/manifest.json"
printf '{"%s":{"%s":"%s"}}' "$repo" "$ver" "$layerhex" > "$img/repositories"

tmpout="$out.tmp.$$"
(cd "$img" && tar --numeric-owner --owner=0 --group=0 --sort=name --mtime=@0 \
   -cf - "$confighex.json" "$layerhex" manifest.json repositories) > "$tmpout"
mv "$tmpout" "$out"
echo "$out: $tag config sha256:$confighex layer sha256:$layerhex" >&2
