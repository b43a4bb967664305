#!/usr/bin/env bash
# Instructions per admission decision, under callgrind (valgrind).
# Usage: bash benches/instructions.sh [case-regex]
# Prints a markdown table: case, instructions per check.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { apt-get update -qq && apt-get install -y -qq valgrind >/dev/null; }
cargo bench --bench instructions --no-run --message-format=json 2>/dev/null \
  | python3 -c 'import sys,json
for l in sys.stdin:
    m=json.loads(l)
    if m.get("reason")=="compiler-artifact" and m["target"]["name"]=="instructions" and m.get("executable"): print(m["executable"])' > /tmp/tollgate-instructions-bin
bin=$(tail -n1 /tmp/tollgate-instructions-bin)
filter=${1:-.}
count() { # case checks -> total instructions
  local out; out=$(mktemp)
  # Count only inside `counted` (see instructions.rs): set-up is left out.
  valgrind --tool=callgrind --toggle-collect='*instructions::counted*' \
    --callgrind-out-file="$out" "$bin" "$1" "$2" >/dev/null 2>&1
  awk '/^summary:/ {print $2}' "$out"; rm -f "$out"
}
echo "| case | instructions per check |"
echo "|---|---:|"
for case in $("$bin" list | grep -E "$filter"); do
  small=$(count "$case" 1000)
  large=$(count "$case" 101000)
  echo "| $case | $(( (large - small) / 100000 )) |"
done
