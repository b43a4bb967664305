#!/usr/bin/env python3
"""Collect tollgate's benchmark results into one report.

Reads whatever exists of:

  <target>/criterion/**/new/{benchmark,estimates}.json   cargo bench --bench check / middleware
  <target>/tollgate-bench/instructions.md                 bash benches/instructions.sh
  <target>/tollgate-bench/memory.json                     cargo bench --bench memory
  <target>/tollgate-bench/http.json                       bash benches/http.sh
  <target>/tollgate-bench/http-instructions.md            bash benches/http-instructions.sh
  <target>/tollgate-bench/redis.json                      cargo bench --features redis --bench redis
  <target>/tollgate-bench/redis-script-cost.md            bash benches/redis-script-cost.sh
  <target>/tollgate-bench/overload.json                   cargo bench --bench overload

where <target> is --target-dir, else $CARGO_TARGET_DIR, else ./target of
the repository. Anything missing is reported as "not run"; nothing is
estimated or filled in. Writes:

  benches/RESULTS.md   every table, the goals, the command behind each section
  benches/chart.svg    bar chart: middleware medians, check medians (1,000 API keys, allow),
                       goodput and p99 under overload with and without shedding
  README.md            the region between <!-- bench:start --> and <!-- bench:end -->
                       (created under "## Performance" if absent), fully regenerated

Criterion results are found through each benchmark's own benchmark.json
(group_id / function_id / value_str), not through directory names, which
criterion sanitises ('/' in group and benchmark ids becomes '_').

Python 3.11 standard library only.
"""

from __future__ import annotations

import argparse
import datetime as dt
import html
import json
import math
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

KEY_TYPES = ["apikey", "ipv4"]
KEY_TYPE_NAMES = {"apikey": "API", "ipv4": "IPv4"}
MODES = ["allow", "deny"]
KEY_COUNTS = [1, 1_000, 1_000_000]
CONTENDED_KEY_COUNTS = [1, 1_000]
ALGORITHMS = ["gcra", "fixed-window", "sliding-window", "sliding-log", "concurrency"]
TOLLGATE = [f"tollgate-{a}" for a in ALGORITHMS]
CHECK_IMPLS = TOLLGATE + ["governor", "floor"]
CONTENDED_IMPLS = ["tollgate-gcra", "governor", "floor"]
MIDDLEWARE = ["none", "tollgate/allowed", "tollgate/429", "tower_governor/allowed", "tower_governor/429"]
HTTP_MODES = ["none", "tollgate-allow", "tollgate-deny", "tower_governor-allow", "tower_governor-deny"]

NOT_RUN = "not run"
DASH = "—"

MARK_START = "<!-- bench:start -->"
MARK_END = "<!-- bench:end -->"

# Goal thresholds.
GCRA_VS_GOVERNOR = 0.8
ALGO_VS_FLOOR = 2.0
TWO_THREADS = 2.5
OVERHEAD_VS_TOWER_GOVERNOR = 0.5
DENY_VS_ALLOW = 1.5
STATE_BYTES = 64.0
HTTP_ALLOW = 0.98
HTTP_DENY = 1.0
REDIS_VS_FLOOR = 0.8
REDIS_CONCURRENCY = [1, 64]
REDIS_CASES = ["floor", "script", "store-allow", "store-allow-leased", "store-deny", "store-deny-cached"]
# How a case is named in the tables where its name alone could mislead.
REDIS_CASE_LABELS = {"store-allow-leased": "store-allow-leased (leased mode, not per request)"}
REDIS_LEASE_TOKENS = 100
# Load shedding under overload: load factors of the service's capacity; the
# smallest is the unloaded reference.
OVERLOAD_MODES = {"none": "no admission control", "shed": "LoadShedLayer"}
OVERLOAD_FACTORS = [0.5, 1.0, 2.0, 4.0]
UNLOADED_FACTOR = 0.5
GOODPUT_AT_4X = 0.9
SHED_P99_AT_4X = 2.0
NO_SHED_P99_GROWTH = 10.0

CMD_CHECK = "cargo bench --bench check -- 'check/(apikey|ipv4)/'"
CMD_CONTENDED = "cargo bench --bench check -- check/contended"
CMD_MIDDLEWARE = "cargo bench --bench middleware"
CMD_INSTRUCTIONS = "bash benches/instructions.sh"
CMD_MEMORY = "cargo bench --bench memory"
CMD_HTTP = "bash benches/http.sh"
CMD_HTTP_INSTRUCTIONS = "bash benches/http-instructions.sh"
CMD_REDIS = "cargo bench --features redis --bench redis"
CMD_OVERLOAD = "cargo bench --bench overload"
CMD_ALL = "bash benches/run-all.sh"


# ---------------------------------------------------------------------------
# Formatting.


def fmt_ns(v: float | None) -> str:
    if v is None:
        return NOT_RUN
    if abs(v) < 10:
        return f"{v:.2f}"
    if abs(v) < 100:
        return f"{v:.1f}"
    return f"{v:,.0f}"


def fmt_signed_ns(v: float | None) -> str:
    if v is None:
        return NOT_RUN
    return ("+" if v >= 0 else "−") + fmt_ns(abs(v))


def fmt_ratio(r: float | None, digits: int = 2) -> str:
    return DASH if r is None else f"{r:.{digits}f}x"


def fmt_count(n: int, noun: str) -> str:
    return f"{fmt_keys(n)} {noun}{'' if n == 1 else 's'}"


def fmt_keys(n: int) -> str:
    if n >= 1_000_000 and n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    if n >= 1_000 and n % 1_000 == 0:
        return f"{n // 1_000}k"
    return str(n)


def fmt_bytes(v: float | None) -> str:
    if v is None:
        return NOT_RUN
    return f"{v:.1f}"


def fmt_mib(b: float | None) -> str:
    if b is None:
        return NOT_RUN
    return f"{b / (1024 * 1024):.1f} MiB"


def finite(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return a / b


def md_table(header: list[str], rows: list[list[str]], align: list[str] | None = None) -> str:
    align = align or ["l"] + ["r"] * (len(header) - 1)
    sep = ["---:" if a == "r" else "---" for a in align]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(sep) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def fmt_when(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def measured_line(times: list[float]) -> str:
    if not times:
        return ""
    lo, hi = min(times), max(times)
    if fmt_when(lo) == fmt_when(hi):
        return f"Result files written {fmt_when(lo)}."
    return f"Result files written between {fmt_when(lo)} and {fmt_when(hi)}."


# ---------------------------------------------------------------------------
# Machine and revision.


def machine() -> dict:
    info = {"model": "unknown", "nproc": os.cpu_count(), "mem_gib": None, "vm": False}
    try:
        nproc = subprocess.run(["nproc"], capture_output=True, text=True, check=True).stdout.strip()
        info["nproc"] = int(nproc)
    except (OSError, subprocess.CalledProcessError, ValueError):
        pass
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
        for line in cpuinfo.splitlines():
            key, _, value = line.partition(":")
            key = key.strip()
            if key == "model name" and info["model"] == "unknown":
                info["model"] = value.strip()
            elif key == "flags" and "hypervisor" in value.split():
                info["vm"] = True
    except OSError:
        pass
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                info["mem_gib"] = int(line.split()[1]) / (1024 * 1024)
    except (OSError, ValueError, IndexError):
        pass
    return info


def machine_line(m: dict) -> str:
    parts = [m["model"], f"{m['nproc']} CPUs (nproc)"]
    parts.append(f"{m['mem_gib']:.1f} GiB RAM" if m["mem_gib"] is not None else "RAM unknown")
    if m["vm"]:
        parts.append("virtual machine (hypervisor flag set)")
    return ", ".join(parts)


# Files this script writes: they do not make the measured code "dirty".
OWN_OUTPUTS = ["benches/RESULTS.md", "benches/chart.svg", "README.md"]


def git_commit() -> str:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    try:
        excludes = [f":(exclude){p}" for p in OWN_OUTPUTS]
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", ".", *excludes],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        status = ""
    return head + ("-dirty" if status else "")


# ---------------------------------------------------------------------------
# Loading results.


@dataclass
class Est:
    median: float
    lower: float | None
    upper: float | None
    mtime: float


class Results:
    def __init__(self, target: Path):
        self.target = target
        self.bench_dir = target / "tollgate-bench"
        self.criterion: dict[tuple, Est] = {}
        self.problems: list[str] = []
        self.criterion_rounds = self._load_criterion_rounds(self.bench_dir / "criterion-runs")
        if not self.criterion_rounds:
            self._load_criterion(target / "criterion")
        self.instructions, self.instructions_mtime = self._load_text(self.bench_dir / "instructions.md")
        self.memory, self.memory_mtime = self._load_json(self.bench_dir / "memory.json")
        self.http, self.http_mtime = self._load_json(self.bench_dir / "http.json")
        self.http_instructions, self.http_instructions_mtime = self._load_text(
            self.bench_dir / "http-instructions.md"
        )
        self.redis, self.redis_mtime = self._load_json(self.bench_dir / "redis.json")
        self.redis_cost, self.redis_cost_mtime = self._load_text(self.bench_dir / "redis-script-cost.md")
        self.overload, self.overload_mtime = self._load_json(self.bench_dir / "overload.json")
        self.run_info, _ = self._load_json(self.bench_dir / "run-all.json")

    def _load_criterion_rounds(self, root: Path) -> int:
        """Each case's median over the rounds run-all.sh kept (criterion-runs/<round>/);
        answers how many rounds there were (0: none kept, read criterion's own directory)."""
        if not root.is_dir():
            return 0
        rounds = sorted(p for p in root.iterdir() if p.is_dir())
        per_key: dict[tuple, list[Est]] = {}
        for r in rounds:
            self.criterion = {}
            self._load_criterion(r)
            for key, est in self.criterion.items():
                per_key.setdefault(key, []).append(est)
        self.criterion = {}
        for key, ests in per_key.items():
            points = sorted(e.median for e in ests)
            n = len(points)
            mid = points[n // 2] if n % 2 else (points[n // 2 - 1] + points[n // 2]) / 2
            self.criterion[key] = Est(
                mid,
                min(e.lower for e in ests if e.lower is not None) if any(e.lower is not None for e in ests) else None,
                max(e.upper for e in ests if e.upper is not None) if any(e.upper is not None for e in ests) else None,
                max(e.mtime for e in ests),
            )
        return len(rounds)

    def _load_criterion(self, root: Path) -> None:
        if not root.is_dir():
            return
        for bj in sorted(root.glob("**/new/benchmark.json")):
            est = bj.with_name("estimates.json")
            try:
                b = json.loads(bj.read_text())
                e = json.loads(est.read_text())
                median = e["median"]
                ci = median.get("confidence_interval") or {}
                key = (b.get("group_id"), b.get("function_id"), b.get("value_str"))
                self.criterion[key] = Est(
                    float(median["point_estimate"]),
                    ci.get("lower_bound"),
                    ci.get("upper_bound"),
                    est.stat().st_mtime,
                )
            except (OSError, ValueError, KeyError, TypeError) as err:
                self.problems.append(f"skipped unreadable criterion result {bj.parent}: {err}")

    def http_instructions_relative(self, mode: str) -> float | None:
        """No limiter's server instructions per request over `mode`'s, from
        http-instructions.md (a markdown table: mode, instructions, ...)."""
        counts = {}
        for line in (self.http_instructions or "").splitlines():
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if len(cells) >= 2 and cells[1].isdigit():
                counts[cells[0]] = int(cells[1])
        none, this = counts.get("none"), counts.get(mode)
        return none / this if none and this else None

    def _load_text(self, path: Path) -> tuple[str | None, float | None]:
        try:
            text = path.read_text().strip()
        except OSError:
            return None, None
        if not text:
            self.problems.append(f"{path} is empty (its script failed?)")
            return None, None
        return text, path.stat().st_mtime

    def _load_json(self, path: Path):
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            return None, None
        except (OSError, ValueError) as err:
            self.problems.append(f"skipped unreadable {path}: {err}")
            return None, None
        if not isinstance(data, (list, dict)) or not data:
            self.problems.append(f"{path} holds no rows")
            return None, None
        return data, path.stat().st_mtime

    # Lookups -------------------------------------------------------------

    def est(self, group: str, function: str, value: str | None) -> Est | None:
        return self.criterion.get((group, function, value))

    def check(self, key_type: str, mode: str, impl: str, n: int) -> float | None:
        e = self.est(f"check/{key_type}/{mode}", impl, str(n))
        return e.median if e else None

    def contended(self, impl: str, threads: int, n: int) -> float | None:
        e = self.est("check/contended/allow", f"{impl}/{threads}-threads", str(n))
        return e.median if e else None

    def middleware(self, case: str) -> float | None:
        e = self.est("middleware", case, None)
        return e.median if e else None

    def times(self, group_prefix: str) -> list[float]:
        return [e.mtime for (g, _, _), e in self.criterion.items() if g and g.startswith(group_prefix)]

    def http_row(self, mode: str) -> dict | None:
        if not isinstance(self.http, list):
            return None
        for row in self.http:
            if isinstance(row, dict) and row.get("mode") == mode:
                return row
        return None

    def http_ratio(self, mode: str) -> float | None:
        row = self.http_row(mode)
        if row is None:
            return None
        if finite(row.get("ratio_to_none")):
            return float(row["ratio_to_none"])
        none = self.http_row("none")
        if none and finite(row.get("rps_median")) and finite(none.get("rps_median")):
            return ratio(row["rps_median"], none["rps_median"])
        return None

    def redis_row(self, case: str, concurrency: int) -> dict | None:
        if not isinstance(self.redis, list):
            return None
        for row in self.redis:
            if isinstance(row, dict) and row.get("case") == case and row.get("concurrency") == concurrency:
                return row
        return None

    def redis_rate(self, case: str, concurrency: int) -> float | None:
        row = self.redis_row(case, concurrency)
        v = row.get("checks_per_sec_median") if row else None
        return float(v) if finite(v) else None

    def redis_ratio(self, case: str, concurrency: int) -> float | None:
        row = self.redis_row(case, concurrency)
        if row is None:
            return None
        if finite(row.get("ratio_to_floor")):
            return float(row["ratio_to_floor"])
        return ratio(self.redis_rate(case, concurrency), self.redis_rate("floor", concurrency))

    def overload_row(self, mode: str, factor: float) -> dict | None:
        if not isinstance(self.overload, list):
            return None
        for row in self.overload:
            if isinstance(row, dict) and row.get("mode") == mode and finite(row.get("load_factor")) \
                    and abs(float(row["load_factor"]) - factor) < 1e-9:
                return row
        return None

    def overload_value(self, mode: str, factor: float, field: str) -> float | None:
        row = self.overload_row(mode, factor)
        v = row.get(field) if row else None
        return float(v) if finite(v) else None

    def memory_rows(self) -> list[dict]:
        if not isinstance(self.memory, list):
            return []
        return [r for r in self.memory if isinstance(r, dict)]

    def memory_row(self, store: str, algorithm: str, key_type: str) -> dict | None:
        for r in self.memory_rows():
            if r.get("store") == store and r.get("algorithm") == algorithm and r.get("key_type") == key_type:
                return r
        return None


# ---------------------------------------------------------------------------
# Goals.


@dataclass
class Goal:
    name: str
    status: str  # MET, NOT MET, NOT RUN, INCOMPLETE
    figure: str


def judge(cases: list[tuple[str, float | None]], ok, expected: int) -> tuple[str, list, list]:
    """cases: (label, value or None). Returns status, measured, failing."""
    measured = [(label, v) for label, v in cases if v is not None]
    failing = [(label, v) for label, v in measured if not ok(v)]
    if not measured:
        status = "NOT RUN"
    elif failing:
        status = "NOT MET"
    elif len(measured) < expected:
        status = "INCOMPLETE"
    else:
        status = "MET"
    return status, measured, failing


def coverage(measured: list, expected: int) -> str:
    if len(measured) == expected:
        return f"all {expected} cases measured"
    return f"{len(measured)} of {expected} cases measured, the rest not run"


def goals(r: Results) -> list[Goal]:
    out: list[Goal] = []

    # 1. GCRA against governor.
    cases = []
    for kt in KEY_TYPES:
        for mode in MODES:
            for n in KEY_COUNTS:
                label = f"{kt} {mode}, {fmt_count(n, 'key')}"
                cases.append((label, ratio(r.check(kt, mode, "tollgate-gcra", n), r.check(kt, mode, "governor", n))))
    status, measured, failing = judge(cases, lambda v: v <= GCRA_VS_GOVERNOR, len(cases))
    name = f"tollgate-gcra check ≤ {GCRA_VS_GOVERNOR}x governor at every key count (API key and IPv4, allow and deny)"
    if measured:
        worst = max(measured, key=lambda c: c[1])
        fig = f"worst {fmt_ratio(worst[1], 3)} ({worst[0]}); {coverage(measured, len(cases))}"
        if failing:
            fig += f"; above {GCRA_VS_GOVERNOR}x in {len(failing)}"
    else:
        fig = NOT_RUN
    out.append(Goal(name, status, fig))

    # 2. The other algorithms against the floor.
    cases = []
    for algo in TOLLGATE[1:]:
        for kt in KEY_TYPES:
            for mode in MODES:
                for n in KEY_COUNTS:
                    label = f"{algo}, {kt} {mode}, {fmt_count(n, 'key')}"
                    cases.append((label, ratio(r.check(kt, mode, algo, n), r.check(kt, mode, "floor", n))))
    status, measured, failing = judge(cases, lambda v: v <= ALGO_VS_FLOOR, len(cases))
    name = f"every other tollgate algorithm ≤ {ALGO_VS_FLOOR:g}x the floor (one DashMap lookup + one atomic add)"
    if measured:
        worst = max(measured, key=lambda c: c[1])
        fig = f"worst {fmt_ratio(worst[1], 3)} ({worst[0]}); {coverage(measured, len(cases))}"
        if failing:
            fig += f"; above {ALGO_VS_FLOOR:g}x in {len(failing)}"
    else:
        fig = NOT_RUN
    out.append(Goal(name, status, fig))

    # 3. Two threads on one key.
    ours = ratio(r.contended("tollgate-gcra", 2, 1), r.contended("tollgate-gcra", 1, 1))
    theirs = ratio(r.contended("governor", 2, 1), r.contended("governor", 1, 1))
    status, _, _ = judge([("", ours)], lambda v: v <= TWO_THREADS, 1)
    name = f"tollgate-gcra, 2 threads on one key ≤ {TWO_THREADS}x the 1-thread time"
    fig = NOT_RUN if ours is None else f"{fmt_ratio(ours, 3)} (governor: {fmt_ratio(theirs, 3) if theirs else NOT_RUN})"
    out.append(Goal(name, status, fig))

    # 4. Allowed-path overhead against tower_governor.
    none = r.middleware("none")
    ours_ns, theirs_ns = r.middleware("tollgate/allowed"), r.middleware("tower_governor/allowed")
    name = f"tollgate allowed-path overhead ≤ {OVERHEAD_VS_TOWER_GOVERNOR}x tower_governor's (middleware, over no layer)"
    if none is None or ours_ns is None or theirs_ns is None:
        out.append(Goal(name, "NOT RUN", NOT_RUN))
    else:
        o, t = ours_ns - none, theirs_ns - none
        if t <= 0:
            status = "MET" if o <= 0 else "NOT MET"
            fig = f"tollgate {fmt_signed_ns(o)} ns, tower_governor {fmt_signed_ns(t)} ns (no ratio: tower_governor adds nothing measurable)"
        else:
            q = o / t
            status = "MET" if q <= OVERHEAD_VS_TOWER_GOVERNOR else "NOT MET"
            fig = f"{fmt_ratio(q, 3)} (tollgate {fmt_signed_ns(o)} ns, tower_governor {fmt_signed_ns(t)} ns)"
        out.append(Goal(name, status, fig))

    # 5. 429 path against the allowed path.
    deny = r.middleware("tollgate/429")
    q = ratio(deny, ours_ns)
    status, _, _ = judge([("", q)], lambda v: v <= DENY_VS_ALLOW, 1)
    name = f"tollgate 429 ≤ {DENY_VS_ALLOW}x tollgate allowed (middleware)"
    fig = NOT_RUN if q is None else f"{fmt_ratio(q, 3)} ({fmt_ns(deny)} ns / {fmt_ns(ours_ns)} ns)"
    out.append(Goal(name, status, fig))

    # 6. Memory beyond the key.
    cases = []
    for kt in KEY_TYPES:
        for algo in ALGORITHMS:
            row = r.memory_row("tollgate", algo, kt)
            v = row.get("overhead_per_key") if row else None
            cases.append((f"{algo}, {kt}", float(v) if finite(v) else None))
    status, measured, failing = judge(cases, lambda v: v <= STATE_BYTES, len(cases))
    name = f"memory ≤ {STATE_BYTES:g} bytes of state per key beyond the key itself (every tollgate algorithm)"
    if measured:
        worst = max(measured, key=lambda c: c[1])
        fig = f"largest {worst[1]:.1f} B ({worst[0]}); {coverage(measured, len(cases))}"
        if failing:
            fig += "; above: " + ", ".join(f"{label} {v:.1f} B" for label, v in failing)
    else:
        fig = NOT_RUN
    out.append(Goal(name, status, fig))

    # 7. HTTP throughput.
    for mode, floor_ratio in (("tollgate-allow", HTTP_ALLOW), ("tollgate-deny", HTTP_DENY)):
        q = r.http_ratio(mode)
        status, _, _ = judge([("", q)], lambda v, f=floor_ratio: v >= f, 1)
        name = f"HTTP throughput, {mode} ≥ {floor_ratio:g}x no limiter (median requests/s)"
        fig = NOT_RUN if q is None else fmt_ratio(q, 3)
        out.append(Goal(name, status, fig))

    # 8. Redis store against a raw EVALSHA of a trivial script.
    cases = [(f"concurrency {c}", r.redis_ratio("store-allow", c)) for c in REDIS_CONCURRENCY]
    status, measured, failing = judge(cases, lambda v: v >= REDIS_VS_FLOOR, len(cases))
    name = f"Redis store ≥ {REDIS_VS_FLOOR:g}x raw EVALSHA (allowed GCRA checks/s, median)"
    if measured:
        fig = ", ".join(f"{label} {fmt_ratio(v, 3)}" for label, v in measured)
        if len(measured) < len(cases):
            fig += f"; {coverage(measured, len(cases))}"
    else:
        fig = NOT_RUN
    out.append(Goal(name, status, fig))

    # 9. Load shedding under overload.
    out += overload_goals(r)
    return out


def overload_ratios(r: Results) -> dict:
    """Goodput at 4x / 1x and p99 of 200s at 4x / unloaded p99, per mode.

    The unloaded p99 is the service's own at the unloaded load factor,
    without admission control, the same reference for both modes."""
    unloaded = r.overload_value("none", UNLOADED_FACTOR, "p99_ms")
    out = {}
    for mode in OVERLOAD_MODES:
        out[mode] = (
            ratio(r.overload_value(mode, 4.0, "goodput_rps"), r.overload_value(mode, 1.0, "goodput_rps")),
            ratio(r.overload_value(mode, 4.0, "p99_ms"), unloaded),
        )
    return out


def overload_goals(r: Results) -> list[Goal]:
    q = overload_ratios(r)
    (shed_goodput, shed_p99), (none_goodput, none_p99) = q["shed"], q["none"]
    status, _, _ = judge([("", shed_goodput)], lambda v: v >= GOODPUT_AT_4X, 1)
    name = f"LoadShedLayer at 4x capacity keeps goodput ≥ {GOODPUT_AT_4X:g}x its goodput at 1x"
    fig = NOT_RUN if shed_goodput is None else (
        f"{fmt_ratio(shed_goodput, 3)} (without admission control: {fmt_ratio(none_goodput, 3) if none_goodput else NOT_RUN})"
    )
    goals = [Goal(name, status, fig)]
    # Both halves are measured as ratios of the same unloaded p99; the goal
    # holds when the shed p99 stays low and the unshed one has grown.
    checks = [
        (shed_p99, shed_p99 is not None and shed_p99 <= SHED_P99_AT_4X),
        (none_p99, none_p99 is not None and none_p99 >= NO_SHED_P99_GROWTH),
    ]
    measured = [ok for v, ok in checks if v is not None]
    if not measured:
        status = "NOT RUN"
    elif not all(measured):
        status = "NOT MET"
    elif len(measured) < len(checks):
        status = "INCOMPLETE"
    else:
        status = "MET"
    name = (
        f"LoadShedLayer at 4x capacity keeps the p99 of admitted requests ≤ {SHED_P99_AT_4X:g}x the unloaded "
        f"p99, while without admission control it grows ≥ {NO_SHED_P99_GROWTH:g}x"
    )
    fig = NOT_RUN if shed_p99 is None else (
        f"{fmt_ratio(shed_p99)} (without admission control: {fmt_ratio(none_p99) if none_p99 else NOT_RUN})"
    )
    goals.append(Goal(name, status, fig))
    return goals


def goals_md(gs: list[Goal]) -> str:
    return "\n".join(f"- **{g.status}** — {g.name}: {g.figure}" for g in gs)


# ---------------------------------------------------------------------------
# RESULTS.md


def section_check(r: Results) -> str:
    out = [
        "## 1. Admission check, one thread",
        "",
        f"Reproduce: `{CMD_CHECK}` (all of it: `cargo bench --bench check`).",
        "",
        "One admission decision on the in-memory store, ns per check. *allow*: a quota nothing "
        "reaches; *deny*: every check refused. *floor*: one DashMap lookup plus one atomic add on "
        "the same keys (identical work in both modes). Keys are visited in a scattered order.",
    ]
    m = measured_line(r.times("check/apikey/") + r.times("check/ipv4/"))
    if m:
        out += ["", m]
    header = ["implementation"] + [fmt_count(n, "key") for n in KEY_COUNTS]
    for kt in KEY_TYPES:
        for mode in MODES:
            out += ["", f"### {KEY_TYPE_NAMES[kt]} keys, {mode}", ""]
            rows = [[impl] + [fmt_ns(r.check(kt, mode, impl, n)) for n in KEY_COUNTS] for impl in CHECK_IMPLS]
            out.append(md_table(header, rows))
            out.append("")
            ratio_rows = [
                ["tollgate-gcra / governor"]
                + [fmt_ratio(ratio(r.check(kt, mode, "tollgate-gcra", n), r.check(kt, mode, "governor", n))) for n in KEY_COUNTS]
            ]
            for algo in TOLLGATE:
                ratio_rows.append(
                    [f"{algo} / floor"]
                    + [fmt_ratio(ratio(r.check(kt, mode, algo, n), r.check(kt, mode, "floor", n))) for n in KEY_COUNTS]
                )
            out.append(md_table(["ratio"] + header[1:], ratio_rows))
    return "\n".join(out)


def section_contended(r: Results) -> str:
    out = [
        "## 2. Contended: two threads checking at once",
        "",
        f"Reproduce: `{CMD_CONTENDED}`.",
        "",
        "Allow mode, API keys. ns per check as the slower thread sees it; with one key every check "
        "contends on the same state.",
    ]
    m = measured_line(r.times("check/contended/"))
    if m:
        out += ["", m]
    rows = []
    for impl in CONTENDED_IMPLS:
        for n in CONTENDED_KEY_COUNTS:
            one, two = r.contended(impl, 1, n), r.contended(impl, 2, n)
            rows.append([impl, fmt_keys(n), fmt_ns(one), fmt_ns(two), fmt_ratio(ratio(two, one))])
    out += ["", md_table(["implementation", "keys", "1 thread (ns)", "2 threads (ns)", "2t / 1t"], rows)]
    return "\n".join(out)


def section_middleware(r: Results) -> str:
    out = [
        "## 3. Middleware: one request through a trivial tower service",
        "",
        f"Reproduce: `{CMD_MIDDLEWARE}`.",
        "",
        "ns per request; the request is built outside the timed region. *allowed*: a quota nothing "
        "reaches; *429*: the quota is spent, every request refused.",
    ]
    m = measured_line(r.times("middleware"))
    if m:
        out += ["", m]
    none = r.middleware("none")
    rows = []
    for case in MIDDLEWARE:
        v = r.middleware(case)
        over = None if (v is None or none is None) else v - none
        rows.append([case, fmt_ns(v), DASH if case == "none" else fmt_signed_ns(over)])
    out += ["", md_table(["case", "median (ns)", "overhead over none (ns)"], rows)]

    ta, t4 = r.middleware("tollgate/allowed"), r.middleware("tollgate/429")
    ga, g4 = r.middleware("tower_governor/allowed"), r.middleware("tower_governor/429")
    o_ours = None if ta is None or none is None else ta - none
    o_theirs = None if ga is None or none is None else ga - none
    over_ratio = ratio(o_ours, o_theirs) if (o_theirs or 0) > 0 else None
    rows = [
        ["tollgate allowed overhead / tower_governor allowed overhead", fmt_ratio(over_ratio)],
        ["tollgate allowed / tower_governor allowed", fmt_ratio(ratio(ta, ga))],
        ["tollgate 429 / tollgate allowed", fmt_ratio(ratio(t4, ta))],
        ["tower_governor 429 / tower_governor allowed", fmt_ratio(ratio(g4, ga))],
        ["tollgate 429 / tower_governor 429", fmt_ratio(ratio(t4, g4))],
    ]
    out += ["", md_table(["ratio", "value"], rows)]
    return "\n".join(out)


def saved_table(text: str | None, mtime: float | None) -> list[str]:
    """A table a script wrote as markdown, under when it was written."""
    if text is None:
        return [f"{NOT_RUN}."]
    return [measured_line([mtime]), "", text]


def section_instructions(r: Results) -> str:
    out = [
        "## 4. Instructions per check (callgrind)",
        "",
        f"Reproduce: `{CMD_INSTRUCTIONS}` (run-all.sh saves its output to "
        "`target/tollgate-bench/instructions.md`).",
        "",
        "Instruction counts, not time: stable on a noisy machine. Each case runs N and "
        "N + 100,000 checks under valgrind; the difference / 100,000 is shown.",
        "",
    ]
    out += saved_table(r.instructions, r.instructions_mtime)
    return "\n".join(out)


def section_memory(r: Results) -> str:
    out = [
        "## 5. Memory per tracked key",
        "",
        f"Reproduce: `{CMD_MEMORY}`.",
        "",
        "Bytes requested from the allocator per key (a counting global allocator), for every key "
        "inserted with one check; *beyond the key*: minus the key's own bytes. Then every key is "
        "made idle and the store's eviction runs: what is left.",
        "",
    ]
    rows_in = r.memory_rows()
    if not rows_in:
        out.append(f"{NOT_RUN}.")
        return "\n".join(out)
    out += [measured_line([r.memory_mtime]), ""]

    def num(row, k, f):
        v = row.get(k)
        return f(v) if finite(v) else NOT_RUN

    rows = []
    for row in rows_in:
        rows.append(
            [
                str(row.get("store", "?")),
                str(row.get("algorithm", "?")),
                str(row.get("key_type", "?")),
                num(row, "keys", lambda v: f"{int(v):,}"),
                num(row, "bytes_per_key", lambda v: f"{v:.1f}"),
                num(row, "overhead_per_key", lambda v: f"{v:.1f}"),
                num(row, "keys_after_eviction", lambda v: f"{int(v):,}"),
                num(row, "bytes_retained_after_eviction", fmt_mib),
            ]
        )
    header = [
        "store",
        "algorithm",
        "key type",
        "keys",
        "bytes / key",
        "beyond the key (B)",
        "keys left after eviction",
        "retained after eviction",
    ]
    out.append(md_table(header, rows, ["l", "l", "l", "r", "r", "r", "r", "r"]))
    return "\n".join(out)


def section_http(r: Results) -> str:
    out = [
        "## 6. HTTP throughput end to end",
        "",
        f"Reproduce: `{CMD_HTTP}`.",
        "",
        "An axum server on one core (`benches/http_server.rs`) behind each limiter, driven over "
        "loopback by wrk on another core; requests/s and latency percentiles (ms) are medians over "
        "the rounds, *ratio to none* the median of each round's ratio to the no-limiter run. "
        "*Server CPU per request* is the server process's own CPU time (user + system, from "
        "`/proc`) over the measured run divided by the requests it answered; its ratio is to the "
        "no-limiter run of the same round (lower is cheaper). Time a shared VM's hypervisor takes "
        "away is not charged to the process, so this column moves far less from run to run than "
        "requests/s, which the goals are stated in.",
        "",
    ]
    if not isinstance(r.http, list):
        out.append(f"{NOT_RUN}.")
        return "\n".join(out)
    out += [measured_line([r.http_mtime]), ""]

    def num(row, k, f):
        v = row.get(k) if row else None
        return f(v) if finite(v) else NOT_RUN

    def status_cell(row):
        if not row or "status_ok" not in row:
            return DASH
        seen = row.get("status")
        seen = ", ".join(map(str, seen)) if isinstance(seen, list) else str(seen or "")
        return ("yes" if row["status_ok"] else "NO") + (f" ({seen})" if seen else "")

    modes = HTTP_MODES + [row.get("mode") for row in r.http if isinstance(row, dict) and row.get("mode") not in HTTP_MODES]
    rows = []
    for mode in modes:
        row = r.http_row(mode)
        rows.append(
            [
                str(mode),
                num(row, "rps_median", lambda v: f"{v:,.0f}"),
                fmt_ratio(r.http_ratio(mode), 3) if row else NOT_RUN,
                num(row, "cpu_us_per_request", lambda v: f"{v:.2f}"),
                num(row, "cpu_ratio_to_none", lambda v: f"{v:.3f}x"),
                num(row, "p50_ms", lambda v: f"{v:.2f}"),
                num(row, "p99_ms", lambda v: f"{v:.2f}"),
                num(row, "rounds", lambda v: f"{int(v)}"),
                status_cell(row),
            ]
        )
    out.append(
        md_table(
            [
                "mode",
                "requests/s (median)",
                "ratio to none",
                "server CPU per request (µs)",
                "CPU ratio to none",
                "p50 (ms)",
                "p99 (ms)",
                "rounds",
                "answers as expected",
            ],
            rows,
            ["l", "r", "r", "r", "r", "r", "r", "r", "l"],
        )
    )
    out += [
        "",
        f"The same server and modes counted instead of timed: `{CMD_HTTP_INSTRUCTIONS}` runs each "
        "server under callgrind and counts the instructions its process executes (user space: "
        "parsing, routing, the limiter, the handler, writing the answer; not the kernel's "
        "socket work) for 1,000 requests over one kept-alive connection after 200 of warm-up. "
        "*Relative to none* is none's count over the mode's, read like the requests/s ratio. "
        "These counts repeat from run to run where the table above moves by a third.",
        "",
    ]
    out += saved_table(r.http_instructions, r.http_instructions_mtime)
    return "\n".join(out)


def fmt_rate(v: float | None) -> str:
    return NOT_RUN if v is None else f"{v:,.0f}"


def rounds_note(r: Results) -> str:
    """How the check and middleware figures were combined over run-all.sh's rounds."""
    if r.criterion_rounds > 1:
        return (
            f", each the median of {r.criterion_rounds} interleaved rounds of the check and "
            "middleware benches"
        )
    return ""


def section_redis(r: Results) -> str:
    out = [
        "## 7. Redis store",
        "",
        f"Reproduce: `{CMD_REDIS}` (starts its own `redis-server` on a free loopback port, or uses "
        "`REDIS_URL`).",
        "",
        "Checks per second (higher is better) through `RedisStore`, by 1 task and by 64 tokio tasks "
        "sharing one store, each task on its own key. *floor*: a raw `EVALSHA` of `return 1` over one "
        "multiplexed connection of the `redis` crate, the least one scripted round trip costs. "
        "*script*: a raw `EVALSHA` of the store's own one-charge GCRA script with the arguments a "
        "check sends, over the same kind of connection: Redis's side of a check without the store's "
        "client code (`bash benches/redis-script-cost.sh` splits that script's cost further). "
        "*store-allow*: a GCRA check of a quota nothing reaches; *store-allow-leased*: the same in "
        f"leased mode (`.leased(TokenLease::new({REDIS_LEASE_TOKENS}))`), most checks answered from "
        f"units the instance holds, one Redis call per lease of up to {REDIS_LEASE_TOKENS} (not a "
        "per-request figure, so not the goal's); *store-deny*: a GCRA check of a spent "
        "`1/hour` quota; *store-deny-cached*: the same with `.over_limit_cache(1024)`, answered "
        "locally after the first refusal. Medians over the rounds; *ratio to floor*: that median over "
        "the floor's at the same concurrency.",
        "",
    ]
    if not isinstance(r.redis, list):
        out.append(f"{NOT_RUN}.")
        return "\n".join(out)
    out += [measured_line([r.redis_mtime]), ""]
    rows = []
    for c in REDIS_CONCURRENCY:
        for case in REDIS_CASES:
            row = r.redis_row(case, c)
            rounds = row.get("rounds") if row else None
            rows.append(
                [
                    REDIS_CASE_LABELS.get(case, case),
                    str(c),
                    fmt_rate(r.redis_rate(case, c)),
                    fmt_ratio(r.redis_ratio(case, c)) if row else NOT_RUN,
                    str(int(rounds)) if finite(rounds) else NOT_RUN,
                ]
            )
    out.append(md_table(["case", "concurrency", "checks/s (median)", "ratio to floor", "rounds"], rows, ["l", "r", "r", "r", "r"]))
    if r.redis_cost:
        out += [
            "",
            "Where Redis's time goes (`bash benches/redis-script-cost.sh`, written "
            f"{fmt_when(r.redis_cost_mtime) if r.redis_cost_mtime else 'at an unknown time'}): "
            "calls per second one `redis-server` sustains for each script, pipelined "
            "(`redis-benchmark`, 32 clients x 8 in flight), so each figure is Redis's own cost per call. "
            "The first rows add one thing each to the row above, down to what any GCRA check must do "
            "(its key and arguments, `TIME`, `GET`, `SET PX`); then each lean one-charge script beside "
            "`check.lua`, the script for several charges.",
            "",
            r.redis_cost,
        ]
    return "\n".join(out)


def overload_table(r: Results) -> str:
    rows = []
    for mode, label in OVERLOAD_MODES.items():
        for factor in OVERLOAD_FACTORS:
            row = r.overload_row(mode, factor)

            def num(k, f, row=row):
                v = row.get(k) if row else None
                return f(v) if finite(v) else NOT_RUN

            rows.append(
                [
                    label,
                    f"{factor:g}x" + (" (unloaded)" if factor == UNLOADED_FACTOR else ""),
                    num("offered_rps", lambda v: f"{v:,.0f}"),
                    num("goodput_rps", lambda v: f"{v:,.0f}"),
                    num("shed_rps", lambda v: f"{v:,.0f}"),
                    num("p50_ms", lambda v: f"{v:.1f}"),
                    num("p99_ms", lambda v: f"{v:.1f}"),
                ]
            )
    return md_table(
        ["mode", "load", "offered req/s", "goodput req/s", "shed req/s", "p50 ms (200s)", "p99 ms (200s)"],
        rows,
        ["l", "l", "r", "r", "r", "r", "r"],
    )


def section_overload(r: Results) -> str:
    out = [
        "## 8. Load shedding under overload",
        "",
        f"Reproduce: `{CMD_OVERLOAD}`.",
        "",
        "An in-process service (`benches/overload.rs`, no sockets): a FIFO queue in front of 8 "
        "workers, each answering after 10 ms of simulated work (a tokio sleep), so past its capacity "
        "work queues inside it and every answer is later. Nominal capacity 800 req/s; a sleep ends on "
        "the timer's next millisecond tick, so the bench first measures the real capacity (the "
        "service saturated for 2 s) and offers load as multiples of that. Open-loop arrivals at fixed "
        "intervals, 2 s per run; requests still waiting when a run ends are dropped. *no admission "
        "control*: the service alone. *LoadShedLayer*: `max_in_flight` 8, `max_queue` 8, "
        "`max_queue_wait` 20 ms, CoDel on (5 ms / 100 ms). Goodput: `200` answers completed within "
        "the run, per second; *shed*: `503` answers per second; latencies from arrival to answer, of "
        "the `200` answers only. Medians over the rounds; 0.5x is the unloaded reference.",
        "",
    ]
    if not isinstance(r.overload, list):
        out.append(f"{NOT_RUN}.")
        return "\n".join(out)
    cap = r.overload_value("none", 1.0, "capacity_rps")
    rounds = r.overload_value("none", 1.0, "rounds")
    out += [measured_line([r.overload_mtime]), ""]
    if cap is not None:
        out += [f"Measured capacity: {cap:,.0f} req/s" + (f"; {int(rounds)} rounds." if rounds else "."), ""]
    out.append(overload_table(r))
    return "\n".join(out)


def header_lines(r: Results, m: dict, commit: str, now: str) -> list[str]:
    lines = [
        f"- machine: {machine_line(m)}",
        f"- date: {now}",
        f"- commit: `{commit}` (when this report was generated)",
    ]
    span = results_span(r)
    if span:
        lines.append(f"- {span[2:]} (each section says when its own results were written)")
    if isinstance(r.run_info, dict) and r.run_info.get("commit"):
        info = r.run_info
        skipped = info.get("skip") or "none"
        lines.append(
            f"- last `benches/run-all.sh`: started {info.get('started', '?')} at commit "
            f"`{info['commit']}`, steps skipped: {skipped}"
        )
    lines.append(
        f"- figures are criterion medians (ns){rounds_note(r)} unless a section says otherwise; "
        "ratios are of those medians"
    )
    return lines


def results_md(r: Results, gs: list[Goal], m: dict, commit: str, now: str) -> str:
    parts = [
        "# tollgate benchmark results",
        "",
        "<!-- generated by benches/report.py; do not edit by hand -->",
        "",
        *header_lines(r, m, commit, now),
        "",
        f"Everything below: `{CMD_ALL}` (skip steps with e.g. `SKIP=\"http memory\"`), then this "
        "file is rewritten by `python3 benches/report.py`. Sections without results say "
        f"\"{NOT_RUN}\"; nothing here is estimated.",
        "",
        "## Goals",
        "",
        goals_md(gs),
        "",
        "NOT RUN: no results for that goal. INCOMPLETE: every measured case meets the goal, "
        "but some cases were not run.",
        "",
        section_check(r),
        "",
        section_contended(r),
        "",
        section_middleware(r),
        "",
        section_instructions(r),
        "",
        section_memory(r),
        "",
        section_http(r),
        "",
        section_redis(r),
        "",
        section_overload(r),
        "",
    ]
    if r.problems:
        parts += ["## Problems reading results", ""] + [f"- {p}" for p in r.problems] + [""]
    return "\n".join(parts)


# ---------------------------------------------------------------------------
# chart.svg


TOLLGATE_COLOR = "#2b6cb0"
PEER_COLOR = "#dd6b20"
BASE_COLOR = "#718096"


def color_for(label: str) -> str:
    if label.startswith("tollgate"):
        return TOLLGATE_COLOR
    if label.startswith(("governor", "tower_governor")):
        return PEER_COLOR
    return BASE_COLOR


def nice_step(vmax: float, ticks: int = 5) -> float:
    raw = vmax / ticks
    mag = 10 ** math.floor(math.log10(raw))
    for f in (1, 2, 2.5, 5, 10):
        if f * mag >= raw:
            return f * mag
    return 10 * mag


def fmt_tick(t: float, step: float) -> str:
    if step >= 1 and float(step).is_integer():
        return f"{t:,.0f}"
    decimals = max(0, -math.floor(math.log10(step)) + (0 if float(step * 10 ** -math.floor(math.log10(step))).is_integer() else 1))
    return f"{t:,.{decimals}f}"


def chart_svg(r: Results, m: dict, commit: str) -> str:
    width = 800
    left = 190  # label column
    right = 110  # room for value text
    plot_w = width - left - right
    bar_h, gap = 22, 8
    esc = html.escape

    def ns(v: float) -> str:
        return f"{fmt_ns(v)} ns"

    ns_axis = "median time (ns), lower is better"
    # Each panel: title, bars (label, value or None), value text, axis label.
    panels = [
        (
            "Middleware: one request through a trivial tower service",
            [(case, r.middleware(case)) for case in MIDDLEWARE],
            ns,
            ns_axis,
        ),
        (
            "Admission check: 1,000 API keys, allow, one thread",
            [(impl, r.check("apikey", "allow", impl, 1_000)) for impl in CHECK_IMPLS],
            ns,
            ns_axis,
        ),
    ]
    if isinstance(r.overload, list):
        shed_label = {"shed": "tollgate shed", "none": "no shedding"}
        factors = [f for f in OVERLOAD_FACTORS if f != UNLOADED_FACTOR]
        panels += [
            (
                "Overload: goodput (200 answers/s) by offered load",
                [
                    (f"{shed_label[mode]}, {f:g}x", r.overload_value(mode, f, "goodput_rps"))
                    for f in factors
                    for mode in ("shed", "none")
                ],
                lambda v: f"{v:,.0f} req/s",
                "goodput (requests/s), higher is better",
            ),
            (
                "Overload: p99 latency of 200 answers by offered load",
                [
                    (f"{shed_label[mode]}, {f:g}x", r.overload_value(mode, f, "p99_ms"))
                    for f in factors
                    for mode in ("shed", "none")
                ],
                lambda v: f"{v:,.1f} ms",
                "p99 latency (ms), lower is better",
            ),
        ]

    y = 0
    body: list[str] = []
    y += 30
    body.append(
        f'<text x="{width / 2}" y="{y}" text-anchor="middle" font-size="18" font-weight="bold">'
        "tollgate benchmarks</text>"
    )
    y += 20
    body.append(
        f'<text x="{width / 2}" y="{y}" text-anchor="middle" font-size="12" fill="#4a5568">'
        f"{esc(machine_line(m))}; commit {esc(commit)}</text>"
    )
    y += 22
    legend_x = left
    for label, color in (("tollgate", TOLLGATE_COLOR), ("governor / tower_governor", PEER_COLOR), ("baseline / no shedding", BASE_COLOR)):
        body.append(f'<rect x="{legend_x}" y="{y - 11}" width="14" height="14" fill="{color}"/>')
        body.append(f'<text x="{legend_x + 20}" y="{y}" font-size="13">{esc(label)}</text>')
        legend_x += 20 + 8 * len(label) + 24

    for title, bars, value_text, axis_label in panels:
        y += 36
        body.append(f'<text x="{left}" y="{y}" font-size="15" font-weight="bold">{esc(title)}</text>')
        y += 14
        values = [v for _, v in bars if v is not None]
        vmax = max(values) if values else 1.0
        step = nice_step(vmax) if vmax > 0 else 1.0
        axis_max = step * math.ceil(vmax / step) if vmax > 0 else 1.0
        top = y
        # Gridlines are drawn after the bars' height is known.
        bars_svg = []
        for label, v in bars:
            cy = y + bar_h / 2
            bars_svg.append(
                f'<text x="{left - 8}" y="{cy + 4.5}" text-anchor="end" font-size="13">{esc(label)}</text>'
            )
            if v is None:
                bars_svg.append(
                    f'<text x="{left + 6}" y="{cy + 4.5}" font-size="13" fill="#a0aec0" font-style="italic">{NOT_RUN}</text>'
                )
            else:
                w = max(1.0, plot_w * v / axis_max)
                bars_svg.append(
                    f'<rect x="{left}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="{color_for(label)}">'
                    f"<title>{esc(label)}: {esc(value_text(v))}</title></rect>"
                )
                bars_svg.append(
                    f'<text x="{left + w + 6:.1f}" y="{cy + 4.5}" font-size="13">{esc(value_text(v))}</text>'
                )
            y += bar_h + gap
        bottom = y - gap + 4
        ticks = []
        t = 0.0
        while t <= axis_max + step / 1000:
            x = left + plot_w * t / axis_max
            ticks.append(f'<line x1="{x:.1f}" y1="{top - 4}" x2="{x:.1f}" y2="{bottom}" stroke="#e2e8f0"/>')
            ticks.append(
                f'<text x="{x:.1f}" y="{bottom + 16}" text-anchor="middle" font-size="12" fill="#4a5568">{fmt_tick(t, step)}</text>'
            )
            t += step
        body += ticks
        body += bars_svg
        body.append(f'<line x1="{left}" y1="{top - 4}" x2="{left}" y2="{bottom}" stroke="#2d3748"/>')
        body.append(f'<line x1="{left}" y1="{bottom}" x2="{left + plot_w}" y2="{bottom}" stroke="#2d3748"/>')
        y = bottom + 36
        body.append(
            f'<text x="{left + plot_w / 2}" y="{y}" text-anchor="middle" font-size="13">'
            f"{esc(axis_label)}</text>"
        )
    height = y + 20
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="Helvetica, Arial, sans-serif">\n'
        "<title>tollgate benchmarks: middleware and check medians, load shedding under overload</title>\n"
        f'<rect width="{width}" height="{height}" fill="white"/>\n'
    )
    return head + "\n".join(body) + "\n</svg>\n"


# ---------------------------------------------------------------------------
# README region


def results_span(r: Results) -> str:
    times = [e.mtime for e in r.criterion.values()]
    times += [
        t
        for t in (
            r.instructions_mtime,
            r.memory_mtime,
            r.http_mtime,
            r.http_instructions_mtime,
            r.redis_mtime,
            r.overload_mtime,
        )
        if t is not None
    ]
    if not times:
        return ""
    lo, hi = fmt_when(min(times)), fmt_when(max(times))
    return f"; results written {lo}" if lo == hi else f"; results written between {lo} and {hi}"


def readme_region(r: Results, gs: list[Goal], m: dict, commit: str, now: str) -> str:
    rows = []
    for n in KEY_COUNTS:
        a, b = r.check("apikey", "allow", "tollgate-gcra", n), r.check("apikey", "allow", "governor", n)
        rows.append(
            [f"check, {fmt_count(n, 'API key')}, allowed: GCRA vs governor", f"{fmt_ns(a)} ns" if a else NOT_RUN, f"{fmt_ns(b)} ns" if b else NOT_RUN, fmt_ratio(ratio(a, b))]
        )
    none = r.middleware("none")
    ta, t4 = r.middleware("tollgate/allowed"), r.middleware("tollgate/429")
    ga, g4 = r.middleware("tower_governor/allowed"), r.middleware("tower_governor/429")

    def ns(v):
        return NOT_RUN if v is None else f"{fmt_ns(v)} ns"

    rows.append(["middleware, no layer (baseline)", ns(none), DASH, DASH])
    rows.append(["middleware, allowed: tollgate vs tower_governor", ns(ta), ns(ga), fmt_ratio(ratio(ta, ga))])
    o_ours = None if ta is None or none is None else ta - none
    o_theirs = None if ga is None or none is None else ga - none
    rows.append(
        [
            "middleware, allowed: overhead over no layer",
            NOT_RUN if o_ours is None else f"{fmt_signed_ns(o_ours)} ns",
            NOT_RUN if o_theirs is None else f"{fmt_signed_ns(o_theirs)} ns",
            fmt_ratio(ratio(o_ours, o_theirs) if (o_theirs or 0) > 0 else None),
        ]
    )
    rows.append(["middleware, 429: tollgate vs tower_governor", ns(t4), ns(g4), fmt_ratio(ratio(t4, g4))])
    rows.append(["middleware, 429 / allowed", fmt_ratio(ratio(t4, ta)), fmt_ratio(ratio(g4, ga)), DASH])
    for n in CONTENDED_KEY_COUNTS:
        ours = ratio(r.contended("tollgate-gcra", 2, n), r.contended("tollgate-gcra", 1, n))
        theirs = ratio(r.contended("governor", 2, n), r.contended("governor", 1, n))
        rows.append(
            [
                f"2 threads / 1 thread, {fmt_count(n, 'key')}: GCRA vs governor",
                fmt_ratio(ours) if ours else NOT_RUN,
                fmt_ratio(theirs) if theirs else NOT_RUN,
                DASH,
            ]
        )
    for kt in KEY_TYPES:
        ours, theirs = r.memory_row("tollgate", "gcra", kt), r.memory_row("governor", "gcra", kt)

        def mem(row):
            if not row or not finite(row.get("bytes_per_key")):
                return NOT_RUN
            beyond = row.get("overhead_per_key")
            extra = f" ({beyond:.0f} beyond the key)" if finite(beyond) else ""
            return f"{row['bytes_per_key']:.0f} B{extra}"

        q = ratio(ours.get("bytes_per_key") if ours else None, theirs.get("bytes_per_key") if theirs else None)
        rows.append([f"memory per {KEY_TYPE_NAMES[kt]} key, GCRA: tollgate vs governor", mem(ours), mem(theirs), fmt_ratio(q)])
    if isinstance(r.http, list):
        for kind in ("allow", "deny"):
            a, b = r.http_ratio(f"tollgate-{kind}"), r.http_ratio(f"tower_governor-{kind}")
            rows.append(
                [
                    f"HTTP requests/s, {'allowed' if kind == 'allow' else '429'}, relative to no limiter",
                    fmt_ratio(a, 3) if a else NOT_RUN,
                    fmt_ratio(b, 3) if b else NOT_RUN,
                    DASH,
                ]
            )
    else:
        rows.append(["HTTP requests/s relative to no limiter", NOT_RUN, NOT_RUN, DASH])
    for kind in ("allow", "deny"):
        a, b = r.http_instructions_relative(f"tollgate-{kind}"), r.http_instructions_relative(f"tower_governor-{kind}")
        rows.append(
            [
                f"HTTP server instructions per request, {'allowed' if kind == 'allow' else '429'}: "
                "no limiter's over the mode's (callgrind)",
                fmt_ratio(a, 3) if a else NOT_RUN,
                fmt_ratio(b, 3) if b else NOT_RUN,
                DASH,
            ]
        )
    for c in REDIS_CONCURRENCY:
        a, b = r.redis_rate("store-allow", c), r.redis_rate("floor", c)
        rows.append(
            [
                f"Redis checks/s, allowed, {fmt_count(c, 'task')}: store vs raw EVALSHA (higher is better)",
                fmt_rate(a),
                fmt_rate(b),
                fmt_ratio(ratio(a, b)),
            ]
        )
    for c in REDIS_CONCURRENCY:
        a, b = r.redis_rate("store-allow-leased", c), r.redis_rate("floor", c)
        rows.append(
            [
                f"Redis checks/s, allowed, {fmt_count(c, 'task')}: leased mode "
                f"(TokenLease::new({REDIS_LEASE_TOKENS})) vs raw EVALSHA (higher is better)",
                fmt_rate(a),
                fmt_rate(b),
                fmt_ratio(ratio(a, b)),
            ]
        )
    for c in REDIS_CONCURRENCY:
        a, b = r.redis_rate("store-deny-cached", c), r.redis_rate("store-deny", c)
        rows.append(
            [
                f"Redis checks/s, refused, {fmt_count(c, 'task')}: over-limit cache vs none (higher is better)",
                fmt_rate(a),
                fmt_rate(b),
                fmt_ratio(ratio(a, b)),
            ]
        )

    q = overload_ratios(r)
    rows.append(
        [
            "overload: goodput at 4x capacity / at 1x: LoadShedLayer vs no admission control (higher is better)",
            fmt_ratio(q["shed"][0], 3) if q["shed"][0] else NOT_RUN,
            fmt_ratio(q["none"][0], 3) if q["none"][0] else NOT_RUN,
            DASH,
        ]
    )
    rows.append(
        [
            "overload: p99 of 200s at 4x capacity / unloaded p99: LoadShedLayer vs no admission control",
            fmt_ratio(q["shed"][1]) if q["shed"][1] else NOT_RUN,
            fmt_ratio(q["none"][1]) if q["none"][1] else NOT_RUN,
            fmt_ratio(ratio(q["shed"][1], q["none"][1]), 3),
        ]
    )

    table = md_table(["comparison", "tollgate", "peer", "tollgate / peer"], rows)
    lines = [
        MARK_START,
        "<!-- generated by benches/report.py from the last benchmark run; edits here are overwritten -->",
        "",
        f"Machine: {machine_line(m)}. Report generated {now} at commit `{commit}`"
        f"{results_span(r)}. Figures are criterion medians{rounds_note(r)} (Redis rows: medians of checks/s over rounds); "
        f"\"{NOT_RUN}\" means that benchmark has not been run on this machine, nothing is filled in.",
        "",
        table,
        "",
        f"Load shedding under overload (`{CMD_OVERLOAD}`: a service of 8 workers × 10 ms, open-loop "
        "load at multiples of its measured capacity; medians over rounds):",
        "",
        overload_table(r) if isinstance(r.overload, list) else f"{NOT_RUN}.",
        "",
        "Goals:",
        "",
        goals_md(gs),
        "",
        f"Reproduce everything with `{CMD_ALL}` (skip steps with `SKIP=\"http memory\"`), or one "
        f"at a time: `cargo bench --bench check`, `{CMD_MIDDLEWARE}`, `{CMD_INSTRUCTIONS}`, "
        f"`{CMD_MEMORY}`, `{CMD_HTTP}`, `{CMD_HTTP_INSTRUCTIONS}`, `{CMD_REDIS}`, `{CMD_OVERLOAD}`, then `python3 benches/report.py` to rewrite this section.",
        "",
        "All tables, with the command behind each: [benches/RESULTS.md](benches/RESULTS.md). "
        "Chart: [benches/chart.svg](benches/chart.svg).",
        "",
        "![Middleware and check medians, tollgate beside governor, tower_governor and baselines; "
        "goodput and p99 under overload with and without LoadShedLayer](benches/chart.svg)",
        MARK_END,
    ]
    return "\n".join(lines)


PLACEHOLDER = re.compile(r"No figures yet.*?(?:\n[ \t]*\n|\Z)", re.S)


def update_readme(text: str, region: str) -> str:
    start, end = text.find(MARK_START), text.find(MARK_END)
    if start != -1 and end != -1 and end > start:
        return text[:start] + region + text[end + len(MARK_END):]
    if start != -1 or end != -1:
        raise SystemExit(f"README.md has only one of {MARK_START} / {MARK_END}; fix it by hand")
    heading = re.search(r"^## Performance[ \t]*\n", text, re.M)
    if heading is None:
        raise SystemExit("README.md has no '## Performance' heading to put the results under")
    after = heading.end()
    next_heading = re.search(r"^## ", text[after:], re.M)
    section_end = after + next_heading.start() if next_heading else len(text)
    placeholder = PLACEHOLDER.search(text, after, section_end)
    if placeholder:
        tail = "\n\n" if placeholder.group(0).endswith("\n\n") or placeholder.end() < section_end else "\n"
        return text[: placeholder.start()] + region + tail + text[placeholder.end():]
    return text[:after] + "\n" + region + "\n\n" + text[after:].lstrip("\n")


# ---------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--target-dir", type=Path, help="cargo target dir holding the results (default: $CARGO_TARGET_DIR or ./target)")
    ap.add_argument("--results", type=Path, default=ROOT / "benches" / "RESULTS.md", help="where to write RESULTS.md")
    ap.add_argument("--chart", type=Path, default=ROOT / "benches" / "chart.svg", help="where to write chart.svg")
    ap.add_argument("--readme", type=Path, default=ROOT / "README.md", help="README whose bench region to rewrite")
    ap.add_argument("--no-readme", action="store_true", help="leave the README alone")
    args = ap.parse_args()

    target = args.target_dir or (Path(os.environ["CARGO_TARGET_DIR"]) if os.environ.get("CARGO_TARGET_DIR") else ROOT / "target")
    r = Results(target.resolve())
    m = machine()
    commit = git_commit()
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    gs = goals(r)

    # Everything is built before anything is written: a README without a place
    # for the results stops the run with no file half updated.
    results = results_md(r, gs, m, commit, now)
    chart = chart_svg(r, m, commit)
    readme_old = readme_new = None
    if not args.no_readme:
        readme_old = args.readme.read_text()
        readme_new = update_readme(readme_old, readme_region(r, gs, m, commit, now))
    args.results.write_text(results)
    args.chart.write_text(chart)
    if readme_new is not None and readme_new != readme_old:
        args.readme.write_text(readme_new)

    print(f"results from {target}: {len(r.criterion)} criterion medians, "
          f"instructions {'yes' if r.instructions else NOT_RUN}, "
          f"memory {'yes' if r.memory_rows() else NOT_RUN}, http {'yes' if isinstance(r.http, list) else NOT_RUN}, "
          f"redis {'yes' if isinstance(r.redis, list) else NOT_RUN}, "
          f"overload {'yes' if isinstance(r.overload, list) else NOT_RUN}")
    for g in gs:
        print(f"  {g.status:10} {g.name}: {g.figure}")
    for p in r.problems:
        print(f"warning: {p}", file=sys.stderr)
    print(f"wrote {args.results}, {args.chart}" + ("" if args.no_readme else f", {args.readme}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
