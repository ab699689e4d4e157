#!/usr/bin/env bash
# Runs every cargo-fuzz target of fuzz/ for a bounded time: `scripts/fuzz.sh [seconds each]`
# (default 20). scripts/test.sh runs it briefly; run it longer by hand (e.g. 600). The targets
# are built once into fuzz/target (kept between runs, so later runs only relink what changed);
# the corpus grows in fuzz/corpus/<target>/ (git keeps only the seed-* files).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-20}
if ! rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    echo "fuzz: the nightly Rust toolchain is missing; cargo fuzz needs it:" >&2
    echo "      rustup toolchain install nightly" >&2
    exit 1
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz: cargo-fuzz is missing: installing it from crates.io" >&2
    cargo install cargo-fuzz --locked
fi
cargo +nightly fuzz build
failed=()
for t in $(cargo +nightly fuzz list); do
    log=$(mktemp)
    # -timeout: an input that takes more than 10 s is a hang and fails the run
    if cargo +nightly fuzz run "$t" -- -max_total_time="$secs" -timeout=10 \
        -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1; then
        summary=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -1 | tr -s '\t ' ' ' || true)
        execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
        rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
        echo "fuzz: $t: ${execs:-?} execs, ${rate:-?} exec/s, ${summary:-no summary}"
    else
        tail -40 "$log" >&2
        echo "fuzz: $t FAILED: the input is under fuzz/artifacts/$t/" >&2
        failed+=("$t")
    fi
    rm -f "$log"
done
if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz: failing targets: ${failed[*]}" >&2
    exit 1
fi
