# bench/lib.sh — helpers shared by the benchmark scripts (source it; needs $tmp, $RUNS, $WARMUP).

# median_ms NAME CMD... : prints the median wall time of CMD in ms (hyperfine when installed)
median_ms() {
  local name=$1; shift
  if command -v hyperfine >/dev/null 2>&1; then
    if ! hyperfine -N --warmup "$WARMUP" --runs "$RUNS" --export-json "$tmp/$name.json" \
         "$(printf '%q ' "$@")" >"$tmp/$name.log" 2>&1; then
      echo "$name: hyperfine failed:" >&2; tail -5 "$tmp/$name.log" >&2; return 1
    fi
    sed -n 's/.*"median": *\([0-9.eE+-]*\).*/\1/p' "$tmp/$name.json" | head -1 |
      awk '{ printf "%.2f\n", $1 * 1000 }'
  else
    local i t0 t1
    for ((i = 0; i < WARMUP; i++)); do "$@" >/dev/null 2>&1 || { echo "$name: warm-up run failed" >&2; return 1; }; done
    : >"$tmp/$name.times"
    for ((i = 0; i < RUNS; i++)); do
      t0=$(date +%s%N)
      "$@" >/dev/null 2>&1 || { echo "$name: run failed" >&2; return 1; }
      t1=$(date +%s%N)
      echo $(( t1 - t0 )) >>"$tmp/$name.times"
    done
    sort -n "$tmp/$name.times" | awk '{ a[NR] = $1 } END {
      m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2; printf "%.2f\n", m / 1e6 }'
  fi
}

vmrss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null; }

# ratio A B : A/B with three decimals
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.3f\n", a / b; else print "n/a" }'; }
