#!/usr/bin/env bash
# Server instructions per HTTP request, under callgrind: the end-to-end
# comparison of benches/http.sh without the machine's noise.
#
# Usage: bash benches/http-instructions.sh
# Env: REQUESTS (1000), WARMUP requests (200), PORT (18490), MODES (as in
#      http.sh), CARGO_TARGET_DIR (honoured), OUT (markdown path; default
#      $CARGO_TARGET_DIR/tollgate-bench/http-instructions.md).
#
# Each mode's server (benches/http_server.rs: axum, hyper, tokio on one
# thread) runs under `valgrind --tool=callgrind`; one curl sends WARMUP
# requests, the counters are zeroed (callgrind_control), the same curl
# sends REQUESTS more over one kept-alive connection, and the counters are
# dumped. Everything the server process executes for those requests is in
# the count: parsing, routing, the limiter, the handler, writing the answer.
# The counts repeat within a few instructions per request from run to run,
# where requests/s on a shared VM move by a third.
set -euo pipefail
cd "$(dirname "$0")/.."

REQUESTS=${REQUESTS:-1000}
WARMUP=${WARMUP:-200}
PORT=${PORT:-18490}
MODES=${MODES:-none tollgate-allow tollgate-deny tower_governor-allow tower_governor-deny}
TARGET_DIR=${CARGO_TARGET_DIR:-target}
OUT=${OUT:-$TARGET_DIR/tollgate-bench/http-instructions.md}
HOST=127.0.0.1 # never anything else
URL="http://$HOST:$PORT"

case " $MODES " in *" none "*) ;; *) echo "MODES must include none (the baseline)" >&2; exit 2 ;; esac
command -v valgrind >/dev/null || { apt-get update -qq && apt-get install -y -qq valgrind >/dev/null; }
command -v curl >/dev/null || { apt-get update -qq && apt-get install -y -qq curl >/dev/null; }

# shellcheck source=benches/http-server.sh
source benches/http-server.sh
build_http_server
work=$(mktemp -d)
trap 'stop_server; rm -rf "$work"' EXIT

# A curl config sending `$1` identical requests over one connection,
# writing each answer's status on its own line.
requests_config() {
  for _ in $(seq "$1"); do
    printf 'url = "%s/api/hello"\noutput = "/dev/null"\nwrite-out = "%%{http_code}\\n"\n' "$URL"
  done
}
requests_config "$WARMUP" >"$work/warmup.cfg"
requests_config "$REQUESTS" >"$work/measured.cfg"

read -r -a modes <<<"$MODES"
echo "| mode | server instructions per request | relative to none | answers |" >"$work/table.md"
echo "|---|---:|---:|---|" >>"$work/table.md"
none_ir=
for mode in "${modes[@]}"; do
  (cd "$work" && exec valgrind --tool=callgrind --callgrind-out-file="$work/cg.$mode" \
    "$bin" --mode "$mode" --addr "$HOST:$PORT") 2>"$work/server.log" &
  server_pid=$!
  await_server 600 "$work/server.log"
  curl -s --config "$work/warmup.cfg" >/dev/null
  callgrind_control --zero "$server_pid" >/dev/null
  curl -s --config "$work/measured.cfg" >"$work/status.txt"
  callgrind_control --dump="measured" "$server_pid" >/dev/null
  stop_server
  dump=$(ls "$work"/cg."$mode".* | tail -n1)
  total=$(awk '/^summary:/ {print $2}' "$dump")
  answers=$(sort "$work/status.txt" | uniq -c | awk '{printf "%s%s x %s", sep, $1, $2; sep = ", "}')
  [ "$(wc -l <"$work/status.txt")" -eq "$REQUESTS" ] || { echo "$mode: curl answered $(wc -l <"$work/status.txt") of $REQUESTS" >&2; exit 1; }
  per=$(( total / REQUESTS ))
  [ "$mode" = none ] && none_ir=$per
  # Relative to none as requests/s would be: none's cost over this one's.
  rel=$(awk -v a="$none_ir" -v b="$per" 'BEGIN {printf "%.3fx", a / b}')
  echo "| $mode | $per | $rel | $answers |" >>"$work/table.md"
  echo "$mode: $per instructions per request ($answers)" >&2
  rm -f "$work"/cg."$mode"*
done
mkdir -p "$(dirname "$OUT")"
cp "$work/table.md" "$OUT"
cat "$OUT"
