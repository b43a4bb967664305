#!/usr/bin/env bash
# Where a Redis check's time goes on Redis's side: calls per second that one
# redis-server sustains for each script, pipelined (redis-benchmark, 32
# clients x 8 in flight), so the client is not the limit and each figure is
# Redis's own cost per call. The first rows each add one thing to the row
# above (what any GCRA check pays); then each algorithm's lean one-charge
# script beside check.lua, the script for several charges, on one charge.
#
# Usage: bash benches/redis-script-cost.sh
# Starts its own redis-server on a free loopback port (killed by PID at the
# end); installs redis-server / redis-tools from Debian if missing.
# Prints a markdown table: script, calls/s (median of 3 interleaved rounds),
# ratio to the floor.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v redis-server >/dev/null || ! command -v redis-benchmark >/dev/null; then
  apt-get update -qq && apt-get install -y -qq redis-server redis-tools >/dev/null
fi
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
dir=$(mktemp -d)
redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$dir" >/dev/null 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done

redis=src/store/redis
prelude=$(cat "$redis/prelude.lua")
deadline=$(cat "$redis/deadline.lua")
weights=$(cat "$redis/weights.lua")
answer=$(cat "$redis/answer.lua")
# The arguments of one charge (quotas nothing reaches: 1e9/second, 1e9 per
# second-long window): check.lua's (mode "2" with a deadline far ahead, a
# nonce, the algorithm, cost, four parameters), and what the store sends
# each lean script (mode, cost, the parameters it reads).
mode="9000000000000000"
gcra="$mode nonce.1 g 1 1 1000000000 1000000000 1000000000"
fixed="$mode nonce.1 f 1 1000 1000000000 0 0"
sliding="$mode nonce.1 s 1 1000 1000000000 0 0"
gcra_lean="$mode 1 1 1000000000 1000000000"
window_lean="$mode 1 1000 1000000000"

# name | script | number of keys | arguments
rows=(
  "floor: return 1, no key, no argument|return 1|0|"
  "+ a key and the 5 arguments gcra.lua is sent|return 1|1|$gcra_lean"
  "+ TIME|local c = redis.call('TIME') return 1|1|$gcra_lean"
  "+ prelude.lua (TIME, helpers)|$prelude
return 1|1|$gcra_lean"
  "+ deadline.lua (a charging check's deadline, read from the mode)|$prelude
$deadline
return 1|1|$gcra_lean"
  "+ GET and SET PX|$prelude
$deadline
local v = redis.call('GET', KEYS[1])
redis.call('SET', KEYS[1], stamp(1), 'PX', ttl(1))
return 1|1|$gcra_lean"
  "gcra.lua, the store's one-charge GCRA script|$prelude
$deadline
$(cat "$redis/gcra.lua")
$answer|1|$gcra_lean"
  "check.lua (several charges) with one GCRA charge|$prelude
$deadline
$weights
$(cat "$redis/check.lua")|1|$gcra"
  "fixed.lua, one fixed-window charge|$prelude
$deadline
$(cat "$redis/fixed.lua")
$answer|1|$window_lean"
  "check.lua with one fixed-window charge|$prelude
$deadline
$weights
$(cat "$redis/check.lua")|1|$fixed"
  "sliding.lua, one sliding-window charge|$prelude
$deadline
$weights
$(cat "$redis/sliding.lua")
$answer|1|$window_lean"
  "check.lua with one sliding-window charge|$prelude
$deadline
$weights
$(cat "$redis/check.lua")|1|$sliding"
)

once() { # sha numkeys args -> calls/s of one run
  local key="tollgate-cost:{task-0}:bench@$RANDOM"
  # shellcheck disable=SC2086 # the arguments are words
  if [ "$2" = 0 ]; then
    redis-benchmark -p "$port" -n 200000 -c 32 -P 8 --csv evalsha "$1" 0
  else
    redis-benchmark -p "$port" -n 200000 -c 32 -P 8 --csv evalsha "$1" 1 "$key" $3
  fi | tail -n1 | cut -d, -f2 | tr -d '"'
}

# Three rounds, interleaved (every row once, then again, ...), so a slow
# spell of the machine hits one round of each row; the median is reported.
names=() shas=() nkeys=() argss=()
for row in "${rows[@]}"; do
  names+=("${row%%|*}")
  rest=${row#*|}
  argss+=("${rest##*|}")
  rest=${rest%|*}
  nkeys+=("${rest##*|}")
  shas+=("$(redis-cli -p "$port" script load "${rest%|*}")")
done
declare -A runs
for round in 1 2 3; do
  for i in "${!names[@]}"; do
    runs[$i,$round]=$(once "${shas[$i]}" "${nkeys[$i]}" "${argss[$i]}")
  done
done

echo "redis: $(redis-server --version | awk '{print $3}'); $(nproc) cores"
echo
echo "| script | calls/s (median of 3 interleaved rounds) | ratio to the floor | µs per call (1 / rate) |"
echo "|---|---:|---:|---:|"
floor=
for i in "${!names[@]}"; do
  r=$(printf '%s\n' "${runs[$i,1]}" "${runs[$i,2]}" "${runs[$i,3]}" | sort -g | sed -n 2p)
  floor=${floor:-$r}
  awk -v n="${names[$i]}" -v r="$r" -v f="$floor" 'BEGIN { printf "| %s | %.0f | %.2fx | %.1f |\n", n, r, r / f, 1e6 / r }'
done
