#!/usr/bin/env bash
# Builds the release binaries into target/dist: berthd, berth-shim and berth-pause as static-pie
# executables (glibc linked in, `-C target-feature=+crt-static`), and the berth CLI as a static
# executable at a fixed address (as the docker CLI is).
# - A CLI command is one short process: the dynamic loader's work (mapping libc, libm and
#   libgcc_s, relocating against them) was a large part of a short command's time (see
#   bench/registry.sh's re-pull).
# - berthd's resident memory is mostly its own code pages; the shared libraries added about
#   2 MB to it (libc 1.5 MB, libm 0.5 MB, ld.so), where the static binary carries only the
#   parts of glibc it calls (bench/cri.sh's rss figure: 14.3 -> 12.5 MB with 20 pods).
# - A shim starts for every container, without the loader's work too.
# - The CLI is not position-independent: a static-pie binary relocates itself at every start
#   (3,857 relocations over 16 pages for `berth`: 11 more page faults per command), and the
#   CLI is nothing but short commands: `berth version` 1.05-1.20 -> 0.98-1.01 ms. Fat LTO
#   generates all of its code in the final step, so one `cargo rustc` of the bin (with
#   `-C relocation-model=static`) does it without rebuilding the dependencies. The daemon,
#   the shim and the pause process live long and keep their randomised addresses.
# glibc's NSS lookups that berthd makes (the API socket's group, registry host names) work
# statically: the `files` and `dns` sources are part of glibc itself.
# The binaries are built for the explicit host target, so the flag touches neither the build
# scripts nor the proc macros (they run on the build machine, dynamically linked).
set -euo pipefail
cd "$(dirname "$0")/.."
host=$(rustc -vV | sed -n 's/^host: //p')
RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" \
    cargo build --release --workspace --bins --target "$host"
RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" \
    cargo rustc --release -p berth --bin berth --target "$host" -- -C relocation-model=static
mkdir -p target/dist
for b in berthd berth-shim berth-pause berth; do
    install -m 0755 "target/$host/release/$b" target/dist/
done
echo "target/dist: berthd berth-shim berth-pause (static-pie), berth (static)"
