#!/usr/bin/env bash
# End-to-end HTTP throughput: benches/http_server.rs (one core, current-thread
# tokio) under wrk (another core), per limiter mode, rounds interleaved.
# Usage: bash benches/http.sh
# Env: ROUNDS (5), DURATION seconds per wrk run (5), WARMUP seconds (2),
#      CONNECTIONS (32), PORT (18480), MODES (space-separated; add `tiered`
#      to include the example's router, built with --features serde),
#      CARGO_TARGET_DIR (honoured), OUT (JSON path; default
#      $CARGO_TARGET_DIR/tollgate-bench/http.json, i.e. target/tollgate-bench/http.json).
# Prints a markdown table; ratios are medians of per-round ratios to `none`.
# Besides requests/s (which a shared VM's neighbours move by a third from
# one run to the next), it reports the server's own CPU time per request
# (utime + stime from /proc over the measured run): time the hypervisor
# takes away is not charged to it, so it is the steadier of the two.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-5}
WARMUP=${WARMUP:-2}
CONNECTIONS=${CONNECTIONS:-32}
PORT=${PORT:-18480}
MODES=${MODES:-none tollgate-allow tollgate-deny tower_governor-allow tower_governor-deny}
TARGET_DIR=${CARGO_TARGET_DIR:-target}
OUT=${OUT:-$TARGET_DIR/tollgate-bench/http.json}
HOST=127.0.0.1 # never anything else
URL="http://$HOST:$PORT"

case " $MODES " in *" none "*) ;; *) echo "MODES must include none (the baseline)" >&2; exit 2 ;; esac

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
command -v curl >/dev/null || { apt-get update -qq && apt-get install -y -qq curl >/dev/null; }

features=()
case " $MODES " in *" tiered "*) features=(--features serde) ;; esac
# shellcheck source=benches/http-server.sh
source benches/http-server.sh
build_http_server "${features[@]}"

ncpu=$(nproc)
cpu_model=$(awk -F': *' '/^model name/ {print $2; exit}' /proc/cpuinfo)
echo "machine: $ncpu CPUs, ${cpu_model:-unknown}; server on core 0, wrk on core 1"
echo "wrk -t1 -c$CONNECTIONS -d${DURATION}s, warm-up ${WARMUP}s, $ROUNDS rounds, binary $bin"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
echo "load average before: $load_before (near or above 1: other work shares these cores, expect noise)"
[ "$ncpu" -ge 2 ] || echo "warning: fewer than 2 CPUs, server and wrk share a core" >&2
core_wrk=$(( ncpu >= 2 ? 1 : 0 ))

work=$(mktemp -d)
trap 'stop_server; rm -rf "$work"' EXIT

# CPU time (user + system) the process has used, in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
clk_tck=$(getconf CLK_TCK)

# Converts a wrk latency (e.g. 512.00us, 1.23ms, 1.01s) to milliseconds.
to_ms() {
  awk -v v="$1" 'BEGIN {
    n = v + 0
    if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n *= 1; else if (v ~ /m$/) n *= 60000; else if (v ~ /s$/) n *= 1000
    printf "%.3f", n }'
}

read -r -a modes <<<"$MODES"
results="$work/results.tsv" # round mode rps p50_ms p99_ms requests non2xx status cpu_us_per_request
for ((round = 1; round <= ROUNDS; round++)); do
  # Rotate the order each round so no mode always runs first or last.
  n=${#modes[@]}
  for ((i = 0; i < n; i++)); do
    mode=${modes[$(( (i + round - 1) % n ))]}
    taskset -c 0 "$bin" --mode "$mode" --addr "$HOST:$PORT" 2>"$work/server.log" &
    server_pid=$!
    await_server 100 "$work/server.log"
    taskset -c "$core_wrk" wrk -t1 -c"$CONNECTIONS" -d"${WARMUP}s" "$URL/api/hello" >/dev/null
    ticks_before=$(cpu_ticks "$server_pid")
    taskset -c "$core_wrk" wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" --latency "$URL/api/hello" >"$work/wrk.txt"
    ticks=$(( $(cpu_ticks "$server_pid") - ticks_before ))
    status=$(curl -s -o /dev/null -w '%{http_code}' "$URL/api/hello")
    stop_server
    rps=$(awk '/^Requests\/sec:/ {print $2}' "$work/wrk.txt")
    p50=$(to_ms "$(awk '$1 == "50%" {print $2}' "$work/wrk.txt")")
    p99=$(to_ms "$(awk '$1 == "99%" {print $2}' "$work/wrk.txt")")
    requests=$(awk '/requests in/ {print $1}' "$work/wrk.txt")
    non2xx=$(awk '/Non-2xx or 3xx responses:/ {print $NF}' "$work/wrk.txt")
    cpu_us=$(awk -v t="$ticks" -v hz="$clk_tck" -v n="${requests:-0}" \
      'BEGIN { if (n > 0) printf "%.3f", t * 1e6 / hz / n; else print 0 }')
    errors=$(grep -E '^ *Socket errors:' "$work/wrk.txt" || true)
    [ -z "$errors" ] || echo "round $round $mode: $errors" >&2
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$mode" "${rps:-0}" "$p50" "$p99" \
      "${requests:-0}" "${non2xx:-0}" "$status" "$cpu_us" >>"$results"
    echo "round $round/$ROUNDS $mode: ${rps:-?} req/s, p50 ${p50} ms, p99 ${p99} ms, server CPU ${cpu_us} us/request, curl $status" >&2
  done
done

mkdir -p "$(dirname "$OUT")"
python3 - "$results" "$OUT" "$MODES" <<'EOF'
import json, statistics, sys
from collections import defaultdict

path, out, modes = sys.argv[1], sys.argv[2], sys.argv[3].split()
rows = [line.rstrip("\n").split("\t") for line in open(path)]
by = defaultdict(dict)  # mode -> round -> row
for r, mode, rps, p50, p99, reqs, non2xx, status, cpu in rows:
    by[mode][int(r)] = dict(rps=float(rps), p50=float(p50), p99=float(p99),
                            reqs=int(reqs), non2xx=int(non2xx), status=status, cpu=float(cpu))
rounds = sorted(by["none"])

def expected(mode):
    return "429" if mode.endswith("-deny") or mode == "tiered" else "200"

print()
print("| mode | req/s (median) | ratio to none | server CPU us/req | CPU ratio to none | p50 ms | p99 ms | non-2xx share | curl status | status ok |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
report = []
for mode in modes:
    rs = by[mode]
    ratios = [rs[r]["rps"] / by["none"][r]["rps"] for r in rounds if by["none"][r]["rps"] > 0]
    rps = statistics.median(x["rps"] for x in rs.values())
    ratio = statistics.median(ratios) if ratios else float("nan")
    # CPU per request against none's in the same round (lower is cheaper).
    cpu_ratios = [rs[r]["cpu"] / by["none"][r]["cpu"] for r in rounds
                  if r in rs and by["none"][r]["cpu"] > 0]
    cpu = statistics.median(x["cpu"] for x in rs.values())
    cpu_ratio = statistics.median(cpu_ratios) if cpu_ratios else float("nan")
    p50 = statistics.median(x["p50"] for x in rs.values())
    p99 = statistics.median(x["p99"] for x in rs.values())
    reqs = sum(x["reqs"] for x in rs.values())
    non2xx = sum(x["non2xx"] for x in rs.values())
    share = non2xx / reqs if reqs else float("nan")
    statuses = sorted({x["status"] for x in rs.values()})
    want = expected(mode)
    # Allow modes: no non-2xx at all. Deny modes: all but a handful refused.
    ok = statuses == [want] and (non2xx == 0 if want == "200" else share > 0.999)
    print(f"| {mode} | {rps:,.0f} | {ratio:.3f} ({min(ratios):.3f}-{max(ratios):.3f}) "
          f"| {cpu:.2f} | {cpu_ratio:.3f} | {p50:.3f} | {p99:.3f} | {share:.4f} | {','.join(statuses)} | {'yes' if ok else 'NO, want ' + want} |")
    report.append(dict(mode=mode, rps_median=rps, ratio_to_none=ratio, p50_ms=p50, p99_ms=p99,
                       cpu_us_per_request=cpu, cpu_ratio_to_none=cpu_ratio, cpu_ratios=cpu_ratios,
                       rounds=len(rs), ratios=ratios, non2xx_share=share, status=statuses,
                       status_ok=ok))
json.dump(report, open(out, "w"), indent=2)

print()
got = {x["mode"]: x for x in report}
for mode, goal, what in [("tollgate-allow", 0.98, "tollgate allowed"),
                         ("tollgate-deny", 1.0, "tollgate almost-all-rejected")]:
    if mode in got:
        r = got[mode]["ratio_to_none"]
        print(f"goal: {what} >= {goal:.2f}x no limiter: {r:.3f}x -> {'MET' if r >= goal else 'NOT MET'}")
print(f"\nJSON: {out}")
EOF
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg) (before: $load_before)"
