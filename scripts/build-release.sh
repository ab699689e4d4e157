#!/usr/bin/env bash
# Builds the release binaries into target/dist: berthd, berth-shim, berth-pause and the berth
# CLI, all static-pie executables (glibc linked in, `-C target-feature=+crt-static`).
# - A CLI command is one short process: the dynamic loader's work (mapping libc, libm and
#   libgcc_s, relocating against them) was a large part of a short command's time (see
#   bench/registry.sh's re-pull).
# - berthd's resident memory is mostly its own code pages; the shared libraries added about
#   2 MB to it (libc 1.5 MB, libm 0.5 MB, ld.so), where the static binary carries only the
#   parts of glibc it calls (bench/cri.sh's rss figure: 14.3 -> 12.5 MB with 20 pods).
# - A shim starts for every container, without the loader's work too.
# glibc's NSS lookups that berthd makes (the API socket's group, registry host names) work
# statically: the `files` and `dns` sources are part of glibc itself.
# The binaries are built for the explicit host target, so the flag touches neither the build
# scripts nor the proc macros (they run on the build machine, dynamically linked).
set -euo pipefail
cd "$(dirname "$0")/.."
host=$(rustc -vV | sed -n 's/^host: //p')
RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" \
    cargo build --release --workspace --bins --target "$host"
mkdir -p target/dist
for b in berthd berth-shim berth-pause berth; do
    install -m 0755 "target/$host/release/$b" target/dist/
done
echo "target/dist: berthd berth-shim berth-pause berth (static)"
