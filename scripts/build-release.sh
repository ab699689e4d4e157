#!/usr/bin/env bash
# Builds the release binaries into target/dist: berthd and berth-shim as cargo builds them, and
# the berth CLI as a static-pie executable. A CLI command is one short process, and the
# dynamic loader's work (mapping libc, libm, libgcc_s and relocating against them) was a
# large part of a short command's time (see bench/registry.sh's re-pull); the static CLI has
# none. It is built for the explicit host target, so its flags touch neither the other
# binaries nor the build scripts, and target/release stays as the workspace build leaves it.
set -euo pipefail
cd "$(dirname "$0")/.."
host=$(rustc -vV | sed -n 's/^host: //p')
cargo build --release --workspace --bins
RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" \
    cargo build --release -p berth --bin berth --target "$host"
mkdir -p target/dist
install -m 0755 target/release/berthd target/release/berth-shim target/release/berth-pause \
    "target/$host/release/berth" target/dist/
echo "target/dist: berthd berth-shim berth-pause berth (static)"
