#!/usr/bin/env bash
# Runs every fuzz target for SECONDS (default 600) one after the other, prints how many
# inputs each ran, and appends the figures to fuzz/RESULTS.md with the date and commit.
#
#   fuzz/run-all.sh [SECONDS] [TARGET...]
#   FUZZ_ARGS="-max_len=16384" fuzz/run-all.sh 60 http_request_head
#
# Needs a nightly toolchain and cargo-fuzz (see fuzz/README.md). One target runs at a
# time, on one core. A target that fails (a crash, a failed check, a leak, a timeout) is
# reported with the input libFuzzer saved under fuzz/artifacts/TARGET/; the script goes on
# with the next target and exits 1 at the end. Full logs: fuzz/target/run-all/TARGET.log.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-600}
[ $# -gt 0 ] && shift
if [ $# -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(cargo +nightly fuzz list)
fi
read -r -a extra <<<"${FUZZ_ARGS:-}"

commit=$(git rev-parse --short HEAD)
git diff --quiet HEAD -- . || commit="$commit (uncommitted changes)"
toolchain=$(rustc +nightly --version | cut -d' ' -f2-)
logs=fuzz/target/run-all
mkdir -p "$logs"

echo "== building the targets"
cargo +nightly fuzz build >/dev/null

rows=()
failed=0
for target in "${targets[@]}"; do
  log="$logs/$target.log"
  echo "== $target for ${seconds}s"
  result=clean
  if ! cargo +nightly fuzz run "$target" -- -max_total_time="$seconds" -print_final_stats=1 \
    "${extra[@]}" >"$log" 2>&1; then
    artifact=$(grep -o 'Test unit written to [^ ]*' "$log" | tail -n1 | cut -d' ' -f5- || true)
    result="FAILED${artifact:+: $artifact}"
    failed=1
  fi
  # libFuzzer's closing statistics; older builds only print `#N DONE`.
  execs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$log" | tail -n1)
  if [ -z "$execs" ]; then
    execs=$(sed -n 's/^#\([0-9]*\)[[:space:]]*DONE.*/\1/p' "$log" | tail -n1)
  fi
  execs=${execs:-?}
  corpus=$(find "fuzz/corpus/$target" -type f -not -name .gitignore | wc -l)
  rate='?'
  [ "$execs" != '?' ] && rate=$((execs / seconds))
  printf '%-28s %12s executions  %8s/s  corpus %6s  %s\n' \
    "$target" "$execs" "$rate" "$corpus" "$result"
  rows+=("| $target | $seconds | $execs | $rate | $corpus | $result |")
done

results=fuzz/RESULTS.md
if [ ! -f "$results" ]; then
  cat >"$results" <<'EOF'
# Fuzzing results

Appended by `fuzz/run-all.sh`, one section per run; the newest is last. "executions" is
libFuzzer's `stat::number_of_executed_units` for the whole run of that target; "corpus" is
the number of inputs in `fuzz/corpus/TARGET/` afterwards (seeds included).
EOF
fi
{
  echo
  echo "## $(date -u '+%Y-%m-%d %H:%M UTC'), commit $commit"
  echo
  echo "$toolchain, cargo-fuzz $(cargo fuzz --version | cut -d' ' -f2), $(nproc) cores," \
    "${seconds}s per target${FUZZ_ARGS:+, FUZZ_ARGS=\`$FUZZ_ARGS\`}."
  echo
  echo "| target | seconds | executions | per second | corpus | result |"
  echo "|---|---:|---:|---:|---:|---|"
  printf '%s\n' "${rows[@]}"
} >>"$results"
echo "== appended to $results"
exit "$failed"
