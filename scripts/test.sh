#!/usr/bin/env bash
# Runs the whole test suite: formatting, lints, unit tests and the integration tests, which
# start real berthd daemons (as root) on temporary roots and sockets.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "run the tests as root (they create namespaces, mounts and cgroups)" >&2; exit 1; }
scripts/deps.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -q -- -D warnings
cargo build --workspace --bins -q
cargo test --workspace -q --no-fail-fast 2>&1 | tee /tmp/berth-test.log
# every fuzz target for 20 s (no panic, no hang, no escape): see fuzz/ and scripts/fuzz.sh
scripts/fuzz.sh 20
