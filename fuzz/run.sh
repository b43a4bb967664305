#!/usr/bin/env bash
# Builds every fuzz target on the stable toolchain (libFuzzer with
# sanitizer coverage, no sanitizer) and runs each for a while.
#
#   bash fuzz/run.sh                 # a smoke: 15 s per target (.ci/run)
#   bash fuzz/run.sh 300             # a campaign: 300 s per target
#   bash fuzz/run.sh 60 store_model  # one target
#   bash fuzz/run.sh --runs 10000000 # the campaign: 10 million inputs each
#
# Prints, per target, the inputs it ran and how long, from libFuzzer's own
# closing line; exits non-zero on the first target that fails (its crash
# input is left in fuzz/artifacts/<target>/). Corpora are kept in
# fuzz/corpus/<target>/ (not committed).
set -euo pipefail
cd "$(dirname "$0")"
limit="-max_total_time=${1:-15}"
seconds=${1:-15}
if [ "${1:-}" = "--runs" ]; then
  limit="-runs=$2"
  seconds=
  shift 2
else
  shift || true
fi
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(quota_parse key_extract sliding_window_forms plans_toml header_fields store_model)
fi
triple=$(rustc -vV | sed -n 's/^host: //p')
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
-Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions"
# --target keeps the coverage flags off build scripts.
cargo build --release --target "$triple" $(printf -- '--bin %s ' "${targets[@]}")
echo "| target | inputs run | seconds |"
echo "|---|---:|---:|"
bin="${CARGO_TARGET_DIR:-target}/$triple/release"
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t" "artifacts/$t"
  log=$(mktemp)
  if ! "$bin/$t" "corpus/$t" "$limit" -max_len=1024 \
      -artifact_prefix="artifacts/$t/" -print_final_stats=1 >"$log" 2>&1; then
    tail -n 40 "$log"
    echo "fuzz target $t FAILED" >&2
    exit 1
  fi
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)
  secs=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -n1)
  echo "| $t | ${runs:-?} | ${secs:-${seconds:-?}} |"
  rm -f "$log"
done
