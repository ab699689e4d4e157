#!/usr/bin/env bash
# Builds the Debian package target/debian/berth_<version>_amd64.deb with dpkg-deb: the four
# binaries (berth, berthd, berth-shim, berth-pause), the systemd units, a default
# /etc/berth/daemon.json (a conffile), the maintainer scripts of contrib/debian, bash/zsh/fish
# completions and man pages, both generated from the CLI's own command table and help.
#   scripts/deb.sh                    from target/dist (scripts/build-release.sh)
#   BIN_DIR=target/debug VERSION=0.1.0-2 COMPRESS=none scripts/deb.sh   (the tests' way)
# Prints the path of the package.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${BIN_DIR:-target/dist}
version=${VERSION:-$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)}
out=${OUT_DIR:-target/debian}
for b in berth berthd berth-shim berth-pause; do
    [ -x "$bin/$b" ] || { echo "missing $bin/$b (run scripts/build-release.sh)" >&2; exit 1; }
done
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
pkg=$stage/berth
install -d "$pkg/DEBIAN" "$pkg/usr/bin" "$pkg/lib/systemd/system" "$pkg/etc/berth" \
    "$pkg/usr/share/bash-completion/completions" "$pkg/usr/share/zsh/vendor-completions" \
    "$pkg/usr/share/fish/vendor_completions.d" "$pkg/usr/share/man/man1" \
    "$pkg/usr/share/man/man8" "$pkg/usr/share/doc/berth"
install -m 0755 "$bin/berth" "$bin/berthd" "$bin/berth-shim" "$bin/berth-pause" "$pkg/usr/bin/"
install -m 0644 contrib/systemd/berthd.service contrib/systemd/berth.socket "$pkg/lib/systemd/system/"
install -m 0644 contrib/debian/daemon.json "$pkg/etc/berth/daemon.json"
"$bin/berth" completion bash >"$pkg/usr/share/bash-completion/completions/berth"
"$bin/berth" completion zsh >"$pkg/usr/share/zsh/vendor-completions/_berth"
"$bin/berth" completion fish >"$pkg/usr/share/fish/vendor_completions.d/berth.fish"

# man pages: the help text of each command as the page's body
date=$(date -u +%Y-%m-%d)
man_page() { # NAME SECTION SUMMARY FILE, help text on stdin
    {
        printf '.TH "%s" "%s" "%s" "berth %s" "berth manual"\n' "$(echo "$1" | tr 'a-z' 'A-Z')" "$2" "$date" "$version"
        printf '.SH NAME\n%s \\- %s\n.SH DESCRIPTION\n.nf\n' "$1" "$3"
        sed -e 's/\\/\\e/g' -e 's/^[.'"'"']/\\\&&/'
        printf '.fi\n.SH SEE ALSO\nberth(1), berthd(8)\n'
    } | gzip -9n >"$4"
}
"$bin/berth" --help | man_page berth 1 "a docker-compatible command line for the berth container engine" "$pkg/usr/share/man/man1/berth.1.gz"
"$bin/berthd" --help | man_page berthd 8 "the berth container engine daemon" "$pkg/usr/share/man/man8/berthd.8.gz"
# every command `berth --help` lists (two spaces, the name, two or more spaces, the summary)
"$bin/berth" --help | sed -n 's/^  \([a-z][a-z0-9-]*\)\*\{0,1\}  \+\(.*\)$/\1\t\2/p' |
while IFS=$'\t' read -r cmd summary; do
    "$bin/berth" "$cmd" --help 2>&1 | man_page "berth-$cmd" 1 "$summary" "$pkg/usr/share/man/man1/berth-$cmd.1.gz"
done

cat >"$pkg/usr/share/doc/berth/copyright" <<TXT
berth: a container engine for Linux speaking the Docker Engine API.
Files: *
License: see the project's repository.
TXT
size=$(du -sk "$pkg" | cut -f1)
# the release binaries are static; a dynamic build (the tests' target/debug) needs glibc
depends=""
for b in berth berthd berth-shim berth-pause; do
    # a dynamic executable names its loader
    if grep -qa /lib64/ld-linux-x86-64.so.2 "$bin/$b"; then
        depends="Depends: libc6 (>= 2.34), libgcc-s1
"
    fi
done
cat >"$pkg/DEBIAN/control" <<CTL
Package: berth
Version: $version
Architecture: amd64
Maintainer: berth engineers <berth@localhost>
Installed-Size: $size
${depends}Recommends: containernetworking-plugins, busybox-static
Section: admin
Priority: optional
Description: container engine speaking the Docker Engine API
 berthd stores layered images, runs containers in namespaces and cgroups on
 overlayfs, wires networks and volumes and answers the Docker Engine API on a
 unix socket (and the Kubernetes CRI); berth is its docker-compatible
 command line.
CTL
echo /etc/berth/daemon.json >"$pkg/DEBIAN/conffiles"
install -m 0755 contrib/debian/postinst contrib/debian/prerm contrib/debian/postrm "$pkg/DEBIAN/"
mkdir -p "$out"
deb=$out/berth_${version}_amd64.deb
dpkg-deb --root-owner-group -Z"${COMPRESS:-xz}" --build "$pkg" "$deb" >/dev/null
echo "$deb"
