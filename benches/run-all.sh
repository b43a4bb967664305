#!/usr/bin/env bash
# Every tollgate benchmark, in order, then the report (benches/RESULTS.md,
# benches/chart.svg and the README's Performance section).
#
# Usage:
#   bash benches/run-all.sh
#   SKIP="http memory" bash benches/run-all.sh      # skip steps by name
#   SKIP="redis redis-cost" bash benches/run-all.sh # no redis-server at hand
#   CARGO_TARGET_DIR=/tmp/tb bash benches/run-all.sh
#   RUNS=1 bash benches/run-all.sh                 # one round of check and middleware (default 3)
#
# Steps, in order: check and middleware (interleaved rounds), instructions,
# memory, http, http-instructions, redis, redis-cost, overload, report.
# The redis step starts its own redis-server on a free loopback port (or
# uses REDIS_URL), so it needs redis-server on PATH; redis-cost starts its
# own too, and installs redis-server / redis-tools if missing.
# Results go to ${CARGO_TARGET_DIR:-target}/criterion (check, middleware) and
# ${CARGO_TARGET_DIR:-target}/tollgate-bench/ (instructions.md, memory.json,
# http.json, http-instructions.md, redis.json, redis-script-cost.md, overload.json); a skipped step leaves its previous results, if any, in place,
# and the report shows when each set of results was written.
set -euo pipefail

# A relative CARGO_TARGET_DIR means relative to where this was started.
if [[ -n "${CARGO_TARGET_DIR:-}" ]]; then
  CARGO_TARGET_DIR=$(realpath -m -- "$CARGO_TARGET_DIR")
  export CARGO_TARGET_DIR
fi
cd "$(dirname "$0")/.."
target=${CARGO_TARGET_DIR:-target}
out="$target/tollgate-bench"

steps=(check middleware instructions memory http http-instructions redis redis-cost overload report)
skip_list=${SKIP:-}
skip=" ${skip_list//,/ } "
for name in $skip; do
  [[ " ${steps[*]} " == *" $name "* ]] || {
    echo "run-all.sh: unknown step '$name' in SKIP; steps: ${steps[*]}" >&2
    exit 2
  }
done
skipped() { [[ "$skip" == *" $1 "* ]]; }

echo "== machine"
echo "nproc:  $(nproc)"
echo "cpu:    $( (grep -m1 '^model name' /proc/cpuinfo 2>/dev/null || echo ': unknown') | cut -d: -f2- | sed 's/^ *//')"
echo "memory: $(awk '/^MemTotal:/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo 2>/dev/null || echo unknown)"
if grep -qw hypervisor /proc/cpuinfo 2>/dev/null; then echo "virtual machine (hypervisor flag set)"; fi
echo "target: $target"
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
# The report's own outputs do not make the measured code dirty.
if [[ -n "$(git status --porcelain --untracked-files=no -- . ':(exclude)benches/RESULTS.md' \
  ':(exclude)benches/chart.svg' ':(exclude)README.md' 2>/dev/null)" ]]; then
  commit="$commit-dirty"
fi
echo "commit: $commit"
echo "skip:   ${SKIP:-none}"

mkdir -p "$out"
printf '{"started": "%s", "commit": "%s", "skip": "%s"}\n' \
  "$(date -u '+%Y-%m-%d %H:%M UTC')" "$commit" "$(echo $skip)" > "$out/run-all.json"

started=$SECONDS
step() { # name, command...
  local name=$1; shift
  if skipped "$name"; then
    echo; echo "== $name: skipped (SKIP)"
    return
  fi
  echo; echo "== $name: $*"
  local t0=$SECONDS
  "$@"
  echo "== $name: done in $((SECONDS - t0)) s"
}

instructions() {
  # Written to a temporary file first: a failed run leaves no half table.
  bash benches/instructions.sh > "$out/instructions.md.tmp"
  mv "$out/instructions.md.tmp" "$out/instructions.md"
  cat "$out/instructions.md"
}

http_instructions() {
  bash benches/http-instructions.sh > "$out/http-instructions.md.tmp"
  mv "$out/http-instructions.md.tmp" "$out/http-instructions.md"
  cat "$out/http-instructions.md"
}

redis_cost() {
  bash benches/redis-script-cost.sh > "$out/redis-script-cost.md.tmp"
  mv "$out/redis-script-cost.md.tmp" "$out/redis-script-cost.md"
  cat "$out/redis-script-cost.md"
}

http() {
  [[ -f benches/http.sh ]] || {
    echo "benches/http.sh is missing; run with SKIP=http" >&2
    return 1
  }
  bash benches/http.sh
}

# check and middleware: RUNS rounds, interleaved (check, middleware, check,
# ...), so a slow spell of the machine hits one round of each rather than
# every case of one bench; each round's criterion estimates are kept under
# $out/criterion-runs/<round>/ and the report takes each case's median over
# the rounds.
criterion_rounds() {
  local runs_dir="$out/criterion-runs"
  rm -rf "$runs_dir"
  for round in $(seq "$RUNS"); do
    for bench in check middleware; do
      if skipped "$bench"; then continue; fi
      echo "-- $bench: round $round/$RUNS"
      cargo bench --bench "$bench"
    done
    local dest
    dest=$(realpath -m -- "$runs_dir/$round")
    mkdir -p "$dest"
    (cd "$target/criterion" && find . -path '*/new/*.json' -print0 \
      | xargs -0 -I{} cp --parents {} "$dest/")
  done
}
RUNS=${RUNS:-3}
if skipped check && skipped middleware; then
  echo; echo "== check, middleware: skipped (SKIP)"
else
  step "check+middleware" criterion_rounds
fi
step instructions instructions
step memory cargo bench --bench memory
step http http
step http-instructions http_instructions
step redis cargo bench --features redis --bench redis
step redis-cost redis_cost
step overload cargo bench --bench overload
step report python3 benches/report.py

echo; echo "== all done in $((SECONDS - started)) s"
