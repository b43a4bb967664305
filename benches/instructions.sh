#!/usr/bin/env bash
# Instructions per admission decision, under callgrind (valgrind).
# Usage: bash benches/instructions.sh [case-regex]
#        FEATURES=metrics bash benches/instructions.sh layer   # with features on
# Prints a markdown table: case, instructions per check, and last-level data
# cache misses per check in callgrind's cache simulation.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { apt-get update -qq && apt-get install -y -qq valgrind >/dev/null; }
cargo bench --bench instructions --no-run ${FEATURES:+--features "$FEATURES"} --message-format=json 2>/dev/null \
  | python3 -c 'import sys,json
for l in sys.stdin:
    m=json.loads(l)
    if m.get("reason")=="compiler-artifact" and m["target"]["name"]=="instructions" and m.get("executable"): print(m["executable"])' > /tmp/tollgate-instructions-bin
bin=$(tail -n1 /tmp/tollgate-instructions-bin)
filter=${1:-.}
# The simulated caches, fixed so the miss counts do not follow the host:
# 32 KiB 8-way L1s and a 32 MiB 16-way last level, 64-byte lines.
caches=(--cache-sim=yes --I1=32768,8,64 --D1=32768,8,64 --LL=33554432,16,64)
count() { # case checks -> "instructions last-level-data-misses" in total
  local out; out=$(mktemp)
  # Count only inside `counted` (see instructions.rs): set-up is left out.
  valgrind --tool=callgrind "${caches[@]}" --toggle-collect='*instructions::counted*' \
    --callgrind-out-file="$out" "$bin" "$1" "$2" >/dev/null 2>&1
  awk '/^events:/ {for (i = 2; i <= NF; i++) col[$i] = i}
       /^summary:/ {print $col["Ir"], $col["DLmr"] + $col["DLmw"]}' "$out"
  rm -f "$out"
}
echo "| case | instructions per check | last-level data misses per check (simulated) |"
echo "|---|---:|---:|"
for case in $("$bin" list | grep -E "$filter"); do
  read -r small_ir small_ll <<< "$(count "$case" 1000)"
  read -r large_ir large_ll <<< "$(count "$case" 101000)"
  echo "| $case | $(( (large_ir - small_ir) / 100000 )) | $(awk -v a="$small_ll" -v b="$large_ll" 'BEGIN {printf "%.2f", (b - a) / 100000}') |"
done
