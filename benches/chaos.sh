#!/usr/bin/env bash
# The Redis fault tests as a soak: each fault of tests/redis/chaos.rs held
# for TOLLGATE_CHAOS_FAULT_MS (default 10000 ms here, 1500 ms in the
# ordinary test run), one test at a time so latencies are the store's and
# not the neighbours', in release mode. Starts its own redis-server
# processes on free loopback ports (as the tests do) and stops them by PID;
# every loop of the load is bounded in count and time. Prints the table the
# README's Reliability section quotes.
#
#   bash benches/chaos.sh            # about 2 minutes after the build
#   TOLLGATE_CHAOS_FAULT_MS=30000 bash benches/chaos.sh
set -euo pipefail
cd "$(dirname "$0")/.."
command -v redis-server >/dev/null || {
  echo "needs redis-server: apt-get install redis-server redis-tools" >&2
  exit 1
}
export TOLLGATE_CHAOS_FAULT_MS=${TOLLGATE_CHAOS_FAULT_MS:-10000}
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test --release --features redis,serde --test redis -- chaos:: example::two_copies_under --test-threads=1 --nocapture 2>&1 | tee "$log" | grep -E '^test |test result' 
echo
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo); $(redis-server --version | awk '{print $3}'); store defaults (timeout 50 ms, local fallback), fault held $((TOLLGATE_CHAOS_FAULT_MS / 1000)) s"
echo
echo "| fault | held | answers | 200 | 429 | other (503) | p99 ms | max ms | answered by the fallback | back on Redis after (ms) |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
grep -o 'chaos | .*' "$log" | sed 's/^chaos //'
