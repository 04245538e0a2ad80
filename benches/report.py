#!/usr/bin/env python3
"""Writes docs/BENCHMARKS.md from a results folder of benches/compare.sh.

    python3 benches/report.py docs/bench/results [--readme README.md]
    python3 benches/report.py RESULTS_DIR [--output FILE] [--svg-dir DIR] [--notes FILE]

docs/bench/results/ is the folder a full run of compare.sh published: the page can be
regenerated from it at any time, and gives the same page. The folder holds:

- `<scenario>.<server>.json`: what `loopchat bench ... --json` printed, one object per run
  (`profile-stat.loopchat.json` and `profile-record.loopchat.json` are the runs that were
  profiled);
- `meta.tsv`: the machine, the versions and the commit measured, `key<TAB>value` a line;
- `git-status.txt`: what in the tree differed from that commit (empty if nothing);
- `commands.tsv`: every command run, `scenario<TAB>server<TAB>kind<TAB>command`;
- `runs.tsv`: how each run went, `scenario<TAB>server<TAB>status<TAB>seconds`;
- `profile.perf-stat.csv`: `perf stat -x,` of loopchat's server in the broadcast scenario;
- `profile.perf-{objects,self,children}.txt`: `perf report --stdio` of its `perf record -g`.

The report has the commit and the machine, the targets of the benchmark issue (met, or
missed by how much), a table per scenario with every server's absolute figures and their
ratio to loopchat's, the sweep as an SVG chart (written here, plain SVG, one line per
server), the profile, and the exact commands. Every measured figure in it is read or
computed from the folder (the targets' thresholds are the benchmark issue's); nothing is
kept from the page it replaces. Last come the notes written by a person, copied from
docs/bench/notes.md under a heading that says so; a figure in them that the generated part
does not show is listed on stderr and in the report.

With `--readme`, the block of README.md between the `bench-figures` markers is replaced by
the "at a glance" table, naming the commit and the date.

Python 3.11 standard library only. Missing fields in a result are shown as "—" and listed
on stderr (and at the end of the report), so a change in the load generator's output is
noticed rather than silently blanking a column.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent

# The servers in the order of every table, their names for readers, and their colours.
SERVERS = ["loopchat", "ws", "bun"]
TITLES = {"loopchat": "loopchat", "ws": "Node `ws`", "bun": "Bun"}
PLAIN_TITLES = {"loopchat": "loopchat", "ws": "Node ws", "bun": "Bun"}
COLORS = {"loopchat": "#d95f02", "ws": "#1b9e77", "bun": "#7570b3"}

# Where the page and its chart go, the published results they are written from, the notes
# written by hand, and the markers of README.md's block of figures.
DEFAULT_OUTPUT = ROOT / "docs" / "BENCHMARKS.md"
DEFAULT_SVG_DIR = ROOT / "docs" / "bench"
PUBLISHED = ROOT / "docs" / "bench" / "results"
NOTES = ROOT / "docs" / "bench" / "notes.md"
README_BEGIN = "<!-- bench-figures:begin: written by benches/report.py --readme -->"
README_END = "<!-- bench-figures:end -->"

# ---------------------------------------------------------------------------------------
# Reading the results


def load_tsv(path: Path) -> list[list[str]]:
    """The rows of a tab-separated file, or none if it is missing."""
    if not path.exists():
        return []
    return [line.split("\t") for line in path.read_text().splitlines() if line.strip()]


@dataclass
class Results:
    """Everything one run of compare.sh left in its folder."""

    folder: Path
    meta: dict[str, str]
    # runs[scenario][server]: the bench's JSON object, for the runs that produced one.
    runs: dict[str, dict[str, dict[str, Any]]]
    commands: list[list[str]]
    statuses: list[list[str]]
    # `git status --porcelain` lines of the tree when the run began.
    git_status: list[str]
    # Expected fields the results lack, "scenario.server: field".
    gaps: list[str]

    @property
    def servers(self) -> list[str]:
        """The servers that took part, in table order."""
        named = self.meta.get("servers", "")
        listed = [s for s in named.split(",") if s] if named else []
        present = {server for by_server in self.runs.values() for server in by_server}
        return [s for s in SERVERS if s in listed or s in present]

    @property
    def quick(self) -> bool:
        return self.meta.get("quick") == "1"

    @property
    def commit(self) -> str | None:
        """The full hash of the commit measured (`loopchat_git`: results of before it
        was recorded so)."""
        value = self.meta.get("commit") or self.meta.get("loopchat_git")
        return value if value and value != "?" else None

    @property
    def dirty(self) -> bool | None:
        """Whether the tree differed from the commit; None if not recorded."""
        if "dirty" in self.meta:
            return {"1": True, "0": False}.get(self.meta["dirty"])
        git = self.meta.get("loopchat_git")
        return git.endswith("-dirty") if git else None


def read_lines(path: Path) -> list[str]:
    """The non-blank lines of a text file, or none if it is missing."""
    if not path.exists():
        return []
    return [line for line in path.read_text().splitlines() if line.strip()]


def load(folder: Path) -> Results:
    meta = {row[0]: row[1] if len(row) > 1 else "" for row in load_tsv(folder / "meta.tsv")}
    runs: dict[str, dict[str, dict[str, Any]]] = {}
    for path in sorted(folder.glob("*.json")):
        scenario, _, server = path.stem.rpartition(".")
        if not scenario or server not in SERVERS:
            continue
        try:
            runs.setdefault(scenario, {})[server] = json.loads(path.read_text())
        except (json.JSONDecodeError, OSError) as error:
            print(f"report.py: skipping {path}: {error}", file=sys.stderr)
    results = Results(
        folder=folder,
        meta=meta,
        runs=runs,
        commands=load_tsv(folder / "commands.tsv"),
        statuses=load_tsv(folder / "runs.tsv"),
        git_status=read_lines(folder / "git-status.txt"),
        gaps=[],
    )
    check_fields(results)
    return results


def get(obj: Any, path: str) -> Any:
    """The value at a dotted path such as `latency_us.p99`, or None."""
    for key in path.split("."):
        if not isinstance(obj, dict) or key not in obj:
            return None
        obj = obj[key]
    return obj


# The load generator's count of the bytes it read from its sockets, per delivery: what
# each delivery cost on the wire, frame headers and compression included.
WIRE_PER_DELIVERY = "wire_bytes_received_per_delivery"

# The fields each scenario's report reads. A missing one is reported as a gap.
BROADCAST_FIELDS = [
    "clients", "senders", "size", "window", "rate", "duration_s", "sent", "delivered",
    "deliveries_per_s", "lost", "duplicated", "out_of_order", "latency_us.p50",
    "latency_us.p90", "latency_us.p99", "latency_us.p999", "latency_us.max",
    "bench_cpu_pct", "server.cpu_s", "server.cpu_ns_per_delivery", "server.peak_rss_kib",
]
ECHO_FIELDS = [
    "clients", "window", "size", "duration_s", "round_trips_per_s", "latency_us.p50",
    "latency_us.p99", "latency_us.p999", "latency_us.max", "bench_cpu_pct",
    "server.cpu_ns_per_delivery", "server.peak_rss_kib",
]
CONNECTION_FIELDS = [
    "clients", "connections.opened", "connections.failed", "connections.handshakes_per_s",
    "connections.rss_before_kib", "connections.rss_after_kib",
    "connections.bytes_per_idle_connection", "connections.closed_cleanly",
    "server.peak_rss_kib",
]
# What the deflate scenarios read beyond those: whether the extension was negotiated, and
# the bytes that crossed the sockets per delivery.
DEFLATE_FIELDS = ["deflate_negotiated", WIRE_PER_DELIVERY]
SWEEP_POINT_FIELDS = [
    "clients", "deliveries_per_s", "latency_us.p99", "server.cpu_ns_per_delivery", "lost",
]


def check_fields(results: Results) -> None:
    expected = {
        "broadcast": BROADCAST_FIELDS,
        "fanout": BROADCAST_FIELDS,
        "profile-stat": BROADCAST_FIELDS,
        "echo": ECHO_FIELDS,
        "connections": CONNECTION_FIELDS,
        "deflate-plain": BROADCAST_FIELDS + DEFLATE_FIELDS,
        "deflate": BROADCAST_FIELDS + DEFLATE_FIELDS,
        "deflate-connections": CONNECTION_FIELDS + ["deflate_negotiated"],
    }
    for scenario, by_server in results.runs.items():
        for server, run in by_server.items():
            where = f"{scenario}.{server}"
            if scenario == "sweep":
                points = run.get("points")
                if not isinstance(points, list) or not points:
                    results.gaps.append(f"{where}: points")
                    continue
                for i, point in enumerate(points):
                    for field in SWEEP_POINT_FIELDS:
                        if get(point, field) is None and field != "lost":
                            results.gaps.append(f"{where}: points[{i}].{field}")
                continue
            for field in expected.get(scenario, []):
                if get(run, field) is None and not optional(run, field):
                    results.gaps.append(f"{where}: {field}")
    for gap in results.gaps:
        print(f"report.py: missing or null: {gap}", file=sys.stderr)


def optional(run: dict[str, Any], field: str) -> bool:
    """Fields that are rightly null: the window of a rate-driven run, and vice versa."""
    if field == "rate":
        return get(run, "window") is not None
    if field == "window":
        return get(run, "rate") is not None
    return False


# ---------------------------------------------------------------------------------------
# Formatting


def fmt_count(v: Any) -> str:
    if v is None:
        return "—"
    return f"{v:,.0f}"


def fmt_rate(v: Any) -> str:
    """A rate per second: 6,512,000/s reads better as 6.51 M/s."""
    if v is None:
        return "—"
    if v >= 1e6:
        return f"{v / 1e6:.2f} M/s"
    if v >= 1e4:
        return f"{v / 1e3:.0f} k/s"
    if v >= 1e3:
        return f"{v / 1e3:.1f} k/s"
    return f"{v:.0f}/s"


def fmt_us(v: Any) -> str:
    """A latency given in microseconds."""
    if v is None:
        return "—"
    if v < 1000:
        return f"{v:.0f} µs"
    if v < 1e6:
        return f"{v / 1000:.2f} ms" if v < 1e5 else f"{v / 1000:.0f} ms"
    return f"{v / 1e6:.2f} s"


def fmt_ns(v: Any) -> str:
    return "—" if v is None else f"{v:,.0f} ns"


def fmt_kib(v: Any) -> str:
    if v is None:
        return "—"
    return f"{v / 1024:,.1f} MiB" if v >= 1024 else f"{v:,.0f} KiB"


def fmt_bytes(v: Any) -> str:
    return "—" if v is None else f"{v:,.0f} B"


def fmt_pct(v: Any) -> str:
    return "—" if v is None else f"{v:.0f} %"


def fmt_seconds(v: Any) -> str:
    return "—" if v is None else f"{v:,.2f} s"


def fmt_ratio(r: float) -> str:
    return f"{r:.2f}×" if r < 100 else f"{r:,.0f}×"


def ratio(a: Any, b: Any) -> float | None:
    """a / b, when both are numbers and b is not zero."""
    if not isinstance(a, (int, float)) or not isinstance(b, (int, float)) or b == 0:
        return None
    return a / b


def md_table(header: list[str], rows: list[list[str]], align: str) -> str:
    """A Markdown table; `align` has one letter per column, l or r."""
    marks = {"l": "---", "r": "---:"}
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join(marks[a] for a in align) + "|",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------
# Per-scenario tables


@dataclass
class Metric:
    """A row of a scenario table."""

    label: str
    path: str
    fmt: Callable[[Any], str]
    # "higher" or "lower" is better: the cell then shows the ratio to loopchat's figure.
    better: str | None = None


BROADCAST_METRICS = [
    Metric("deliveries/s ↑", "deliveries_per_s", fmt_rate, "higher"),
    Metric("server CPU per delivery ↓", "server.cpu_ns_per_delivery", fmt_ns, "lower"),
    Metric("server CPU time", "server.cpu_s", fmt_seconds),
    Metric("latency p50 ↓", "latency_us.p50", fmt_us, "lower"),
    Metric("latency p90 ↓", "latency_us.p90", fmt_us, "lower"),
    Metric("latency p99 ↓", "latency_us.p99", fmt_us, "lower"),
    Metric("latency p99.9 ↓", "latency_us.p999", fmt_us, "lower"),
    Metric("latency max ↓", "latency_us.max", fmt_us, "lower"),
    Metric("messages sent", "sent", fmt_count),
    Metric("deliveries", "delivered", fmt_count),
    Metric("lost", "lost", fmt_count),
    Metric("duplicated", "duplicated", fmt_count),
    Metric("out of order", "out_of_order", fmt_count),
    Metric("server peak RSS ↓", "server.peak_rss_kib", fmt_kib, "lower"),
    Metric("load generator CPU", "bench_cpu_pct", fmt_pct),
]

DEFLATE_METRICS = [
    Metric("permessage-deflate negotiated", "deflate_negotiated", lambda v: "—" if v is None
           else "yes" if v else "no"),
    Metric("bytes on the wire per delivery ↓", WIRE_PER_DELIVERY, fmt_bytes, "lower"),
] + BROADCAST_METRICS

ECHO_METRICS = [
    Metric("round trips/s ↑", "round_trips_per_s", fmt_rate, "higher"),
    Metric("server CPU per round trip ↓", "server.cpu_ns_per_delivery", fmt_ns, "lower"),
    Metric("server CPU time", "server.cpu_s", fmt_seconds),
    Metric("latency p50 ↓", "latency_us.p50", fmt_us, "lower"),
    Metric("latency p99 ↓", "latency_us.p99", fmt_us, "lower"),
    Metric("latency p99.9 ↓", "latency_us.p999", fmt_us, "lower"),
    Metric("latency max ↓", "latency_us.max", fmt_us, "lower"),
    Metric("lost", "lost", fmt_count),
    Metric("server peak RSS ↓", "server.peak_rss_kib", fmt_kib, "lower"),
    Metric("load generator CPU", "bench_cpu_pct", fmt_pct),
]

CONNECTION_METRICS = [
    Metric("server RSS per idle connection ↓", "connections.bytes_per_idle_connection",
           fmt_bytes, "lower"),
    Metric("handshakes/s ↑", "connections.handshakes_per_s", fmt_rate, "higher"),
    Metric("opened", "connections.opened", fmt_count),
    Metric("failed", "connections.failed", fmt_count),
    Metric("closed cleanly", "connections.closed_cleanly", fmt_count),
    Metric("server RSS before", "connections.rss_before_kib", fmt_kib),
    Metric("server RSS with all open", "connections.rss_after_kib", fmt_kib),
    Metric("server peak RSS ↓", "server.peak_rss_kib", fmt_kib, "lower"),
    Metric("server CPU time", "server.cpu_s", fmt_seconds),
]

DEFLATE_CONNECTION_METRICS = [DEFLATE_METRICS[0]] + CONNECTION_METRICS


def scenario_table(runs: dict[str, dict[str, Any]], servers: list[str],
                   metrics: list[Metric]) -> str:
    """Rows are metrics, columns servers; other servers' cells carry their ratio to
    loopchat's figure."""
    present = [s for s in servers if s in runs]
    base = runs.get("loopchat")
    rows = []
    for metric in metrics:
        cells = [metric.label]
        for server in present:
            value = get(runs[server], metric.path)
            cell = metric.fmt(value)
            if metric.better and server != "loopchat" and base is not None:
                r = ratio(value, get(base, metric.path))
                if r is not None:
                    cell += f" ({fmt_ratio(r)})"
            cells.append(cell)
        if any(c != "—" for c in cells[1:]):
            rows.append(cells)
    return md_table([""] + [TITLES[s] for s in present], rows, "l" + "r" * len(present))


def describe_run(run: dict[str, Any]) -> str:
    """The parameters of a run, as a reader would say them."""
    parts = []
    if get(run, "clients") is not None:
        parts.append(f"C={get(run, 'clients'):,}")
    if get(run, "senders") is not None and run.get("scenario") != "echo":
        parts.append(f"S={get(run, 'senders'):,}")
    if get(run, "size") is not None:
        parts.append(f"{get(run, 'size')}-byte messages")
    if get(run, "rate") is not None:
        parts.append(f"{get(run, 'rate')} msg/s per sender")
    elif get(run, "window") is not None:
        parts.append(f"window {get(run, 'window')}")
    if get(run, "duration_s") is not None:
        parts.append(f"{get(run, 'duration_s')} s measured")
    return ", ".join(parts)


def first_run(by_server: dict[str, dict[str, Any]]) -> dict[str, Any]:
    for server in SERVERS:
        if server in by_server:
            return by_server[server]
    return {}


# ---------------------------------------------------------------------------------------
# Targets


@dataclass
class Target:
    """One target of the benchmark issue, as measured."""

    text: str
    measured: str
    verdict: str


def met(ok: bool, shortfall: str) -> str:
    return "**met**" if ok else f"**missed**: {shortfall}"


def over(value: float, limit: float, unit: str) -> str:
    """How far `value` is over `limit`: "by 15 ns (10 % over)"."""
    return f"by {value - limit:,.0f} {unit} ({(value / limit - 1) * 100:.0f} % over)"


def mismatch(run: dict[str, Any] | None, **want: Any) -> str | None:
    """Why `run` cannot be held to a target set for other parameters, if it cannot."""
    if run is None:
        return "not measured"
    for key, value in want.items():
        if get(run, key) != value:
            return f"not comparable: this run had {key} = {get(run, key)}, the target {value}"
    return None


def targets(results: Results) -> list[Target]:
    rows = measured_targets(results.runs)
    if results.quick:
        # A smoke run's figures are not evidence either way.
        for row in rows:
            row.verdict = "not judged (smoke run)"
    return rows


def measured_targets(runs: dict[str, dict[str, dict[str, Any]]]) -> list[Target]:
    rows: list[Target] = []

    # Broadcast, C=1,000, S=10, 64 B, window 8.
    lc = runs.get("broadcast", {}).get("loopchat")
    bun = runs.get("broadcast", {}).get("bun")
    params = dict(clients=1000, senders=10, size=64, window=8)
    text = "broadcast C=1,000, S=10, 64 B, window 8: server CPU per delivery ≤ 150 ns"
    why = mismatch(lc, **params)
    ns = get(lc, "server.cpu_ns_per_delivery")
    if why or ns is None:
        rows.append(Target(text, "—", why or "not measured"))
    else:
        rows.append(Target(text, fmt_ns(ns), met(ns <= 150, over(ns, 150, "ns"))))
    text = "same run: deliveries/s ≥ 1.3× Bun's"
    rows.append(ratio_target(text, lc, bun, "deliveries_per_s", fmt_rate, 1.3, params))

    # Broadcast, C=10,000, one sender at 50 msg/s.
    lc = runs.get("fanout", {}).get("loopchat")
    bun = runs.get("fanout", {}).get("bun")
    params = dict(clients=10000, senders=1, rate=50)
    text = "broadcast C=10,000, one sender at 50 msg/s: nothing lost"
    why = mismatch(lc, **params)
    lost, delivered = get(lc, "lost"), get(lc, "delivered")
    if why or lost is None:
        rows.append(Target(text, "—", why or "not measured"))
    else:
        expected = (delivered or 0) + lost
        share = f" ({lost / expected * 100:.3f} % of {expected:,})" if expected else ""
        dup = get(lc, "duplicated")
        measured = f"{lost:,} lost" + (f", {dup:,} duplicated" if dup else "")
        rows.append(Target(text, measured, met(lost == 0, f"{lost:,} deliveries lost{share}")))
    text = "same run: p99 latency ≤ ½ of Bun's"
    why = mismatch(lc, **params) or (None if bun else "Bun not measured")
    p99, bun_p99 = get(lc, "latency_us.p99"), get(bun, "latency_us.p99")
    r = ratio(p99, bun_p99)
    if why or r is None:
        rows.append(Target(text, fmt_us(p99), why or "not measured"))
    else:
        rows.append(Target(
            text,
            f"{fmt_us(p99)}, Bun {fmt_us(bun_p99)}: {fmt_ratio(r)} of Bun's",
            met(r <= 0.5, f"{fmt_ratio(r)} of Bun's, not 0.5×: p99 must fall "
                          f"{(1 - 0.5 / r) * 100:.0f} % to {fmt_us(bun_p99 / 2)}"),
        ))

    # Echo, C=100, W=8.
    lc = runs.get("echo", {}).get("loopchat")
    bun = runs.get("echo", {}).get("bun")
    text = "echo C=100, window 8: round trips/s ≥ 1.2× Bun's"
    rows.append(ratio_target(text, lc, bun, "round_trips_per_s", fmt_rate, 1.2,
                             dict(clients=100, window=8)))

    # Idle connections, C=10,000.
    rows.append(idle_memory_target("≤ 1 KiB of server RSS per idle connection at C=10,000",
                                   runs.get("connections", {}), deflate=False))

    rows += deflate_targets(runs)
    return rows


def idle_memory_target(text: str, by_server: dict[str, dict[str, Any]],
                       deflate: bool) -> Target:
    """At most 1 KiB of server RSS per idle connection at C=10,000, Bun's beside it; with
    `deflate`, only if every client negotiated permessage-deflate."""
    lc, bun = by_server.get("loopchat"), by_server.get("bun")
    why = mismatch(lc, clients=10000)
    if not why and deflate and not get(lc, "deflate_negotiated"):
        why = "permessage-deflate was not negotiated"
    per = get(lc, "connections.bytes_per_idle_connection")
    if why or per is None:
        return Target(text, "—", why or "not measured")
    bun_per = get(bun, "connections.bytes_per_idle_connection")
    measured = fmt_bytes(per) + (f", Bun {fmt_bytes(bun_per)}" if bun_per is not None else "")
    return Target(text, measured, met(per <= 1024, over(per, 1024, "B")))


def deflate_targets(runs: dict[str, dict[str, dict[str, Any]]]) -> list[Target]:
    """The targets of the permessage-deflate issue."""
    rows: list[Target] = []
    params = dict(clients=1000, senders=10, size=1024, window=8)
    lc = runs.get("deflate", {}).get("loopchat")
    plain = runs.get("deflate-plain", {}).get("loopchat")
    bun = runs.get("deflate", {}).get("bun")
    text = ("broadcast C=1,000, S=10, 1 KiB chat JSON, window 8, every client with "
            "permessage-deflate: server CPU per delivery ≤ 1.5× the same run without it")
    why = mismatch(lc, **params) or mismatch(plain, **params)
    if not why and not get(lc, "deflate_negotiated"):
        why = "permessage-deflate was not negotiated"
    ns, plain_ns = get(lc, "server.cpu_ns_per_delivery"), get(plain, "server.cpu_ns_per_delivery")
    r = ratio(ns, plain_ns)
    if why or r is None:
        rows.append(Target(text, fmt_ns(ns), why or "not measured"))
    else:
        rows.append(Target(
            text, f"{fmt_ns(ns)} against {fmt_ns(plain_ns)}: {fmt_ratio(r)}",
            met(r <= 1.5, f"{fmt_ratio(r)}, not 1.5×: needs {(1 - 1.5 / r) * 100:.0f} % less")))
    text = "same run: deliveries/s ≥ 2× Bun's with its perMessageDeflate on"
    if bun is not None and not get(bun, "deflate_negotiated"):
        rows.append(Target(text, "—", "Bun did not negotiate permessage-deflate"))
    else:
        rows.append(ratio_target(text, lc, bun, "deliveries_per_s", fmt_rate, 2.0, params))

    rows.append(idle_memory_target(
        "≤ 1 KiB of server RSS per idle connection with permessage-deflate negotiated, "
        "at C=10,000", runs.get("deflate-connections", {}), deflate=True))
    return rows


def ratio_target(text: str, lc: dict | None, bun: dict | None, path: str,
                 fmt: Callable[[Any], str], want: float, params: dict) -> Target:
    """A "loopchat at least `want` times Bun's figure" target."""
    why = mismatch(lc, **params) or (None if bun else "Bun not measured")
    ours, theirs = get(lc, path), get(bun, path)
    r = ratio(ours, theirs)
    if why or r is None:
        return Target(text, fmt(ours), why or "not measured")
    measured = f"{fmt(ours)}, Bun {fmt(theirs)}: {fmt_ratio(r)}"
    shortfall = f"{fmt_ratio(r)}, not {want}×: needs {(want / r - 1) * 100:.0f} % more"
    return Target(text, measured, met(r >= want, shortfall))


# ---------------------------------------------------------------------------------------
# The sweep chart: plain SVG, three panels side by side, log-scaled C.


def nice_step(span: float, ticks: int = 5) -> float:
    """A round tick step (1, 2 or 5 times a power of ten) giving about `ticks` ticks."""
    raw = span / ticks
    power = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 5, 10):
        if raw <= m * power:
            return m * power
    return 10 * power


def short_number(v: float) -> str:
    for bound, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= bound:
            text = f"{v / bound:.1f}".rstrip("0").rstrip(".")
            return text + suffix
    return f"{v:g}"


@dataclass
class Panel:
    title: str
    path: str
    # Scale values for the axis (latency in µs is drawn in ms).
    scale: float


# A panel's y axis is logarithmic when its values span more than this factor, so that
# a server ten times slower than the others does not flatten their lines.
LOG_Y_SPAN = 20

PANELS = [
    Panel("deliveries/s (higher is better)", "deliveries_per_s", 1.0),
    Panel("server CPU ns per delivery (lower is better)", "server.cpu_ns_per_delivery", 1.0),
    Panel("p99 latency, ms (lower is better)", "latency_us.p99", 1e-3),
]


def sweep_svg(sweeps: dict[str, list[dict[str, Any]]], subtitle: str) -> str:
    """Three panels (throughput, CPU per delivery, p99 latency) against C, one line per
    server."""
    pw, ph = 320, 250  # one panel
    left, right, top, bottom = 62, 18, 34, 44
    head = 54  # title and legend
    width, height = pw * len(PANELS), ph + head
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="Helvetica, Arial, sans-serif" '
        f'font-size="12">',
        "<title>Broadcast sweep: loopchat, Node ws and Bun against the number of clients</title>",
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="12" y="20" font-size="15" font-weight="bold">Broadcast sweep'
        f"</text>",
        f'<text x="12" y="38" fill="#555">{escape(subtitle)}</text>',
    ]
    # Legend, top right.
    x = width - 12
    for server in reversed([s for s in SERVERS if s in sweeps]):
        label = PLAIN_TITLES[server]
        x -= 14 + 7 * len(label) + 30
        out.append(f'<line x1="{x}" y1="24" x2="{x + 22}" y2="24" stroke="{COLORS[server]}" '
                   f'stroke-width="2.5"/>')
        out.append(f'<circle cx="{x + 11}" cy="24" r="3.5" fill="{COLORS[server]}"/>')
        out.append(f'<text x="{x + 28}" y="28">{escape(label)}</text>')

    all_c = sorted({p["clients"] for pts in sweeps.values() for p in pts
                    if isinstance(p.get("clients"), (int, float)) and p["clients"] > 0})
    if not all_c:
        out.append('<text x="20" y="120">no sweep data</text></svg>')
        return "\n".join(out)
    lo_x, hi_x = math.log10(all_c[0]), math.log10(all_c[-1])
    if hi_x - lo_x < 1e-9:
        lo_x, hi_x = lo_x - 0.5, hi_x + 0.5
    pad = (hi_x - lo_x) * 0.08
    lo_x, hi_x = lo_x - pad, hi_x + pad

    for i, panel in enumerate(PANELS):
        ox, oy = i * pw, head
        x0, x1 = ox + left, ox + pw - right
        y0, y1 = oy + ph - bottom, oy + top  # y0 is the bottom

        def px(c: float) -> float:
            return x0 + (math.log10(c) - lo_x) / (hi_x - lo_x) * (x1 - x0)

        values = [get(p, panel.path) * panel.scale for pts in sweeps.values() for p in pts
                  if isinstance(get(p, panel.path), (int, float))]
        positive = [v for v in values if v > 0]
        log_y = bool(positive) and max(positive) / min(positive) > LOG_Y_SPAN
        if log_y:
            values = positive
        out.append(f'<text x="{ox + left}" y="{oy + 18}" font-weight="bold">'
                   f"{escape(panel.title)}</text>")
        if not values:
            out.append(f'<text x="{x0 + 10}" y="{(y0 + y1) / 2}" fill="#888">no data</text>')
            continue
        if log_y:
            lo_y = math.floor(math.log10(min(values)))
            hi_y = math.ceil(math.log10(max(values)))
            ticks = [10.0**k for k in range(lo_y, hi_y + 1)]
            out.append(f'<text x="{x1}" y="{oy + 30}" text-anchor="end" fill="#888" '
                       f'font-size="11">log scale</text>')

            def py(v: float, lo_y: float = lo_y, hi_y: float = hi_y) -> float:
                return y0 - (math.log10(v) - lo_y) / (hi_y - lo_y) * (y0 - y1)
        else:
            step = nice_step(max(values) or 1.0)
            top_y = step * math.ceil((max(values) or 1.0) / step)
            ticks = [k * step for k in range(int(round(top_y / step)) + 1)]

            def py(v: float, top_y: float = top_y) -> float:
                return y0 - v / top_y * (y0 - y1)

        # Grid and axes.
        for t in ticks:
            y = py(t)
            out.append(f'<line x1="{x0}" y1="{y:.1f}" x2="{x1}" y2="{y:.1f}" stroke="#e4e4e4"/>')
            out.append(f'<text x="{x0 - 6}" y="{y + 4:.1f}" text-anchor="end" fill="#444">'
                       f"{short_number(t)}</text>")
        for c in all_c:
            x = px(c)
            out.append(f'<line x1="{x:.1f}" y1="{y0}" x2="{x:.1f}" y2="{y1}" stroke="#eeeeee"/>')
            out.append(f'<text x="{x:.1f}" y="{y0 + 16}" text-anchor="middle" fill="#444">'
                       f"{short_number(c)}</text>")
        out.append(f'<line x1="{x0}" y1="{y0}" x2="{x1}" y2="{y0}" stroke="#444"/>')
        out.append(f'<line x1="{x0}" y1="{y0}" x2="{x0}" y2="{y1}" stroke="#444"/>')
        out.append(f'<text x="{(x0 + x1) / 2}" y="{y0 + 34}" text-anchor="middle" fill="#444">'
                   f"clients (C, log scale)</text>")

        for server in [s for s in SERVERS if s in sweeps]:
            points = []
            for p in sorted(sweeps[server], key=lambda p: p.get("clients") or 0):
                c, v = p.get("clients"), get(p, panel.path)
                if not isinstance(c, (int, float)) or c <= 0 or not isinstance(v, (int, float)):
                    continue
                v *= panel.scale
                if log_y and v <= 0:
                    continue
                points.append((px(c), py(v)))
            if not points:
                continue
            color = COLORS[server]
            coords = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
            out.append(f'<polyline points="{coords}" fill="none" stroke="{color}" '
                       f'stroke-width="2.5" stroke-linejoin="round"/>')
            for x, y in points:
                out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{color}"/>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def sweep_table(sweeps: dict[str, list[dict[str, Any]]], servers: list[str]) -> str:
    present = [s for s in servers if s in sweeps]
    by_c: dict[Any, dict[str, dict[str, Any]]] = {}
    for server in present:
        for p in sweeps[server]:
            by_c.setdefault(p.get("clients"), {})[server] = p
    header = ["C"]
    for server in present:
        name = PLAIN_TITLES[server]
        header += [f"{name} deliveries/s", f"{name} ns/delivery", f"{name} p99"]
    rows = []
    for c in sorted(by_c, key=lambda c: c if isinstance(c, (int, float)) else 0):
        row = [fmt_count(c)]
        base = by_c[c].get("loopchat")
        for server in present:
            p = by_c[c].get(server)
            rate = fmt_rate(get(p, "deliveries_per_s"))
            if server != "loopchat" and base is not None:
                r = ratio(get(p, "deliveries_per_s"), get(base, "deliveries_per_s"))
                if r is not None:
                    rate += f" ({fmt_ratio(r)})"
            row += [rate, fmt_ns(get(p, "server.cpu_ns_per_delivery")),
                    fmt_us(get(p, "latency_us.p99"))]
        rows.append(row)
    return md_table(header, rows, "r" * len(header))


# ---------------------------------------------------------------------------------------
# The profile: perf stat counts and perf record tables, as compare.sh left them


@dataclass
class PerfCount:
    """One line of `perf stat -x,`."""

    event: str
    value: float | None
    unit: str


def load_perf_stat(path: Path) -> list[PerfCount]:
    """The counts of a `perf stat -x, -o FILE` output; "<not counted>" reads as None."""
    counts = []
    for line in read_lines(path):
        if line.startswith("#"):
            continue
        fields = line.split(",")
        if len(fields) < 3:
            continue
        try:
            value: float | None = float(fields[0])
        except ValueError:
            value = None
        counts.append(PerfCount(fields[2], value, fields[1]))
    return counts


@dataclass
class PerfReport:
    """A `perf report --stdio -g none` table: its header facts and its rows."""

    samples: str | None
    event: str | None
    # Each row: the percentages (one, or two with --children), then the other columns.
    rows: list[tuple[list[float], list[str]]]


PERF_SAMPLES = re.compile(r"^# Samples: (\S+)\s+of event '([^']+)'")
# "  12.34%  [kernel.kallsyms]  [k] tcp_sendmsg_locked", or two percentages with
# --children; the object has no spaces, the symbol may.
PERF_ROW = re.compile(r"^\s*((?:[\d.]+%\s+)+)(\S+)(?:\s+\[(.)\]\s+(.+?))?\s*$")


def load_perf_report(path: Path) -> PerfReport | None:
    if not path.exists():
        return None
    samples = event = None
    rows = []
    for line in path.read_text().splitlines():
        header = PERF_SAMPLES.match(line)
        if header:
            samples, event = header.group(1), header.group(2)
            continue
        if line.startswith("#") or not line.strip():
            continue
        row = PERF_ROW.match(line)
        if not row:
            continue
        shares = [float(p) for p in re.findall(r"([\d.]+)%", row.group(1))]
        columns = [row.group(2)]
        if row.group(4):
            columns += ["kernel" if row.group(3) == "k" else "user", row.group(4)]
        rows.append((shares, columns))
    return PerfReport(samples, event, rows)


def code(text: str) -> str:
    """Text as Markdown code inside a table cell."""
    return "`" + text.replace("|", "\\|").replace("`", "'") + "`"


def profile_section(results: Results, results_link: str) -> list[str]:
    folder = results.folder
    lines = ["## Profile of loopchat in the broadcast scenario", ""]
    skipped = [row for row in results.statuses if row and row[0] == "profile"]
    counts = load_perf_stat(folder / "profile.perf-stat.csv")
    objects = load_perf_report(folder / "profile.perf-objects.txt")
    own = load_perf_report(folder / "profile.perf-self.txt")
    children = load_perf_report(folder / "profile.perf-children.txt")
    if not counts and objects is None:
        why = skipped[0][2] if skipped and len(skipped) > 2 else "not in these results"
        return lines + [f"Not profiled: {why}.", ""]

    stat_run = results.runs.get("profile-stat", {}).get("loopchat")
    record_run = results.runs.get("profile-record", {}).get("loopchat")
    params = describe_run(stat_run or record_run or {})
    lines += [
        f"loopchat's server in the broadcast scenario ({params}), run twice more after the "
        "scenarios above, apart from the run in their tables so that the profiler does "
        "not weigh on those figures: once under `perf stat`, once under `perf record -g`, "
        "each started after the warm-up and stopped inside the measured window. The "
        "commands are under [The exact commands](#the-exact-commands); their outputs are "
        f"the `profile.*` files in [the results]({results_link}).",
        "",
    ]

    by_event = {c.event: c for c in counts}
    clock = by_event.get("task-clock")
    elapsed = by_event.get("duration_time")
    cpu_ns = clock.value * 1e6 if clock and clock.value is not None and clock.unit == "msec" \
        else None
    seconds = elapsed.value / 1e9 if elapsed and elapsed.value else None
    if counts:
        rows = []
        for c in counts:
            if c.event in ("duration_time",):
                continue
            if c.event == "task-clock":
                count = fmt_seconds(c.value / 1e3) if c.value is not None else "—"
                per_s = (f"{c.value / 1e3 / seconds:.2f} CPUs"
                         if c.value is not None and seconds else "—")
            else:
                count = fmt_count(c.value)
                per_s = fmt_rate(c.value / seconds) if c.value is not None and seconds else "—"
            name = c.event.removeprefix("syscalls:sys_enter_")
            if name != c.event:
                name = f"`{name}` calls"
            elif c.event == "task-clock":
                name = "server CPU time (`task-clock`)"
            rows.append([name, count, per_s])
        lines += [
            "### Counts (`perf stat`)",
            "",
            f"Over {fmt_seconds(seconds)} of the first run." if seconds else "",
            "",
            md_table(["", "count", "per second"], rows, "lrr"),
            "",
        ]
        writev = by_event.get("syscalls:sys_enter_writev")
        rate = get(stat_run, "deliveries_per_s")
        per_delivery = get(stat_run, "server.cpu_ns_per_delivery")
        derived = []
        if writev and writev.value and cpu_ns is not None:
            derived.append(["server CPU per `writev` call", "task-clock ÷ `writev` calls",
                            fmt_us(cpu_ns / writev.value / 1e3)])
        if writev and writev.value and seconds and rate:
            derived.append(["deliveries per `writev` call",
                            "the run's deliveries/s (load generator, whole measured window) "
                            "÷ `writev` calls/s (perf stat)",
                            f"{rate / (writev.value / seconds):,.1f}"])
        if per_delivery is not None:
            derived.append(["server CPU per delivery in this run",
                            "the load generator's figure, as in the tables above",
                            fmt_ns(per_delivery)])
        if derived:
            lines += [md_table(["derived", "how", "value"], derived, "llr"), ""]

    def share_table(report: PerfReport, header: list[str], limit: int) -> list[str]:
        rows = []
        for shares, columns in report.rows[:limit]:
            cells = [f"{p:.1f} %" for p in shares]
            if len(columns) == 3:
                cells += [code(columns[2]), columns[1], code(columns[0])]
            else:
                cells += [code(columns[0])]
            rows.append(cells)
        if not rows or len(rows[0]) != len(header):
            return ["(no samples, or a table this report cannot read)", ""]
        shares_count = len(report.rows[0][0])
        align = "r" * shares_count + "l" * (len(header) - shares_count)
        return [md_table(header, rows, align), ""]

    if objects is not None:
        about = (f"{objects.samples} samples of `{objects.event}`"
                 if objects.samples else "the samples")
        lines += ["### Where the CPU time goes (`perf record -g`)", "",
                  f"From {about} in the second run. By object (the kernel, the binary, "
                  "the C library):", ""]
        lines += share_table(objects, ["share of samples", "object"], 10)
    if own is not None:
        lines += ["Functions by their own samples (the top 15; those over 0.5 % are in "
                  "`profile.perf-self.txt`):", ""]
        lines += share_table(own, ["own samples", "function", "where", "object"], 15)
    if children is not None:
        lines += ["Functions by the samples in them and everything they call (the top 15; "
                  "user-space call chains are cut short without frame pointers, the "
                  "kernel's are whole):", ""]
        lines += share_table(children, ["with callees", "own", "function", "where", "object"],
                             15)
    return lines


# ---------------------------------------------------------------------------------------
# The notes written by hand


# A figure: a number with a unit ("166 ns", "2.14×", "10 %", "5.56 M/s", "2,164 B"), or a
# bare number with a separator or of three digits or more ("61,200", "0.60", "4096"). A
# number inside a word (a commit hash, `tcp_v4_rcv`) is not one.
FIGURE = re.compile(
    r"(?<![\w.,])(\d[\d,]*(?:\.\d+)?)(?:\s?(%|×|ns|µs|us|ms|s|k/s|M/s|/s|B|KB|KiB|MB|MiB|GB"
    r"|GiB|CPUs?)(?![\w/])|(?![\w]))")


def figures(text: str) -> list[str]:
    """The figures of a text, each without the space between number and unit."""
    found = []
    for m in FIGURE.finditer(text):
        number, unit = m.group(1).rstrip(",."), m.group(2) or ""
        if unit or "," in number or "." in number or len(number) >= 3:
            found.append(number + unit)
    return found


def unbacked_figures(notes: str, generated: str) -> list[str]:
    """The figures in the notes, outside code and comments, that the generated text does
    not show."""
    prose = re.sub(r"<!--.*?-->", "", notes, flags=re.S)
    prose = re.sub(r"`[^`]*`", "", prose)
    shown = set(figures(generated))
    stray = []
    for figure in figures(prose):
        if figure not in shown and figure not in stray:
            stray.append(figure)
    return stray


def notes_section(notes_path: Path, generated: str, output: Path) -> list[str]:
    if not notes_path.exists():
        return []
    notes = notes_path.read_text().strip("\n")
    where = os.path.relpath(notes_path, output.parent)
    lines = [
        "---",
        "",
        "## Notes written by hand",
        "",
        f"> Not generated: copied from [{where}]({where}), written by a person, and not "
        "re-measured when this page is regenerated. They explain the figures above; any "
        "figure they cite must be in the tables above or the raw results.",
        "",
    ]
    stray = unbacked_figures(notes, generated)
    if stray:
        for figure in stray:
            print(f"report.py: {where} cites {figure!r}, which no generated table shows",
                  file=sys.stderr)
        lines += ["> **Figures in these notes that no generated table shows:** "
                  + ", ".join(f"`{f}`" for f in stray), ""]
    return lines + [notes, ""]


# ---------------------------------------------------------------------------------------
# The document


SCENARIOS = [
    ("broadcast", "Broadcast, throughput",
     "Every client is connected; the senders each keep a window of messages in flight "
     "(a sender sends again when one of its own messages has come back to it through "
     "another client), and the server relays each message to every other client."),
    ("fanout", "Broadcast to {C} clients at a steady rate",
     "One sender at a fixed rate, every other client a receiver: nothing should be lost, "
     "and the latency from send to receipt shows how evenly the server serves a large "
     "fan-out."),
    ("echo", "Echo",
     "Each client keeps a window of messages in flight and the server sends each back "
     "to its sender."),
    ("connections", "Idle connections",
     "Clients connect (the WebSocket handshake included), stay idle, and are closed. "
     "Memory per connection is the growth of the server's RSS divided by the connections "
     "held."),
    ("deflate-plain", "Chat-like JSON, uncompressed",
     "The broadcast scenario with 1 KiB chat-like JSON messages (`--payload chat-json`: "
     "English-like sentences drawn at random, so each message differs and compresses "
     "like chat text), no client offering permessage-deflate: the baseline of the next "
     "table. Bytes on the wire are what the load generator read from its sockets per "
     "delivery."),
    ("deflate", "Chat-like JSON, compressed (permessage-deflate)",
     "The same load with every client offering permessage-deflate as a browser does, "
     "and each server's compression on: loopchat compresses each broadcast once for "
     "every recipient; Bun's shared compressor compresses each published message once; "
     "Node `ws` compresses each send, so once per recipient."),
    ("deflate-connections", "Idle connections with permessage-deflate",
     "As the idle connections above, with every client negotiating permessage-deflate: "
     "what compression costs a connection that is not sending anything."),
]

MACHINE_ROWS = [
    ("CPU", "cpu_model"), ("CPUs", "cpu_count"), ("SIMD", "cpu_flags_simd"),
    ("memory", "memory"), ("OS", "os"), ("kernel", "kernel"),
    ("frequency governor", "governor"), ("load average before / after", None),
    ("open files per process", "nofile"),
    ("net.ipv4.tcp_congestion_control", "tcp_congestion_control"),
    ("net.core.default_qdisc", "default_qdisc"),
    ("net.ipv4.tcp_tw_reuse", "tcp_tw_reuse"),
    ("net.ipv4.ip_local_port_range", "ip_local_port_range"),
    ("net.core.somaxconn", "somaxconn"),
]

VERSION_ROWS = [
    ("loopchat", "loopchat"), ("rustc", "rustc"), ("Node.js", "node"), ("ws", "ws"),
    ("Bun", "bun"), ("npm", "npm"), ("taskset", "taskset"), ("perf", "perf"),
]


def commands_section(results: Results) -> list[str]:
    lines = [
        "## The exact commands",
        "",
        "As `benches/compare.sh` ran them, from the top of the repository. `$PEERS` is the "
        "temporary folder the peers were installed in (with `benches/peers/ws_server.mjs` "
        "and `benches/peers/bun_server.js` copied into it); `$OUT` is the results folder "
        "as the run wrote it (published without its `logs/`); `$SERVER_PID` is the pid of "
        "the server started just before. Each server is started fresh for each scenario "
        "and stopped (SIGTERM) after it.",
        "",
    ]
    setup = [c for c in results.commands if c and c[0] == "setup"]
    if setup:
        lines += ["```sh"]
        for row in setup:
            command = row[3] if len(row) > 3 else ""
            if len(row) > 2 and row[2] == "install":
                command = f'cd "$PEERS" && {command}'
            lines.append(command)
        lines += ["```", ""]
    scenarios = []
    for row in results.commands:
        if row and row[0] != "setup" and row[0] not in scenarios:
            scenarios.append(row[0])
    for scenario in scenarios:
        lines += [f"`{scenario}`:", "", "```sh"]
        for row in results.commands:
            if len(row) < 4 or row[0] != scenario:
                continue
            command = re.sub(r"--server-pid (\d+|\$SERVER_PID)", '--server-pid "$SERVER_PID"',
                             row[3])
            command = command.replace("-p $SERVER_PID", '-p "$SERVER_PID"')
            if row[2] == "server":
                lines += [command + " &", "SERVER_PID=$!"]
            elif row[2] == "profile":
                lines.append(f"({command}) &")
            else:
                lines.append(command)
        lines += ["```", ""]
    return lines


def commit_sentence(results: Results, results_link: str) -> str:
    """Which commit was measured, and whether the tree differed from it."""
    meta = results.meta
    commit = results.commit
    if commit is None:
        return "The commit measured was not recorded."
    subject = meta.get("commit_subject")
    about = f" ({subject[:80]}{'…' if len(subject) > 80 else ''})" if subject else ""
    text = f"Measured at commit `{commit}`{about}"
    if results.dirty is False:
        return text + ", with the tree exactly as committed."
    if results.dirty is None:
        return text + "; whether the tree had uncommitted changes was not recorded."
    paths = [line[3:] if len(line) > 3 else line for line in results.git_status]
    shown = ", ".join(f"`{p}`" for p in paths[:8]) + (", …" if len(paths) > 8 else "")
    count = meta.get("dirty_paths") or str(len(paths))
    return (text + f", **with uncommitted changes** in {count} path(s)"
            + (f": {shown}" if shown else "")
            + f" (listed in `git-status.txt` in [the results]({results_link})).")


def glance_rows(results: Results) -> list[list[str]]:
    """The "at a glance" table: one headline figure per scenario, every server."""
    glance = [
        ("broadcast", "broadcast C={C}, S={S}, window {W}: deliveries/s ↑", "deliveries_per_s",
         fmt_rate),
        ("broadcast", "same run: server CPU per delivery ↓", "server.cpu_ns_per_delivery",
         fmt_ns),
        ("fanout", "broadcast C={C}, S={S} at {R} msg/s each: p99 latency ↓",
         "latency_us.p99", fmt_us),
        ("echo", "echo C={C}, window {W}: round trips/s ↑", "round_trips_per_s", fmt_rate),
        ("connections", "C={C} idle connections: server RSS per connection ↓",
         "connections.bytes_per_idle_connection", fmt_bytes),
        ("deflate", "broadcast C={C}, 1 KiB chat JSON, permessage-deflate: deliveries/s ↑",
         "deliveries_per_s", fmt_rate),
        ("deflate", "same run: bytes on the wire per delivery ↓", WIRE_PER_DELIVERY,
         fmt_bytes),
        ("deflate-connections",
         "C={C} idle connections with permessage-deflate: RSS per connection ↓",
         "connections.bytes_per_idle_connection", fmt_bytes),
    ]
    rows = []
    for scenario, label, path, fmt in glance:
        by_server = results.runs.get(scenario, {})
        if not by_server:
            continue
        run = first_run(by_server)

        def param(key: str) -> str:
            value = get(run, key)
            return f"{value:,}" if isinstance(value, int) else \
                f"{value:g}" if isinstance(value, float) else "?"

        label = label.format(C=param("clients"), S=param("senders"), W=param("window"),
                             R=param("rate"))
        base = get(by_server.get("loopchat"), path)
        row = [label]
        for server in results.servers:
            run = by_server.get(server)
            value = get(run, path)
            cell = fmt(value)
            r = ratio(value, base)
            if server != "loopchat" and r is not None:
                cell += f" ({fmt_ratio(r)})"
            lost, expected = get(run, "lost"), get(run, "expected")
            if scenario == "fanout" and lost and expected:
                cell += f", {lost / expected * 100:.0f} % lost"
            row.append(cell)
        rows.append(row)
    return rows


def glance_table(results: Results) -> str:
    servers = results.servers
    return md_table([""] + [TITLES[s] for s in servers], glance_rows(results),
                    "l" + "r" * len(servers))


def build(results: Results, output: Path, svg_path: Path, notes_path: Path) -> str:
    meta = results.meta
    servers = results.servers
    results_link = os.path.relpath(results.folder, output.parent) + "/"
    regenerate = f"python3 benches/report.py {display_path(results.folder)}"
    if output != DEFAULT_OUTPUT or svg_path.parent != DEFAULT_SVG_DIR:
        regenerate += (f" --output {display_path(output)}"
                       f" --svg-dir {display_path(svg_path.parent)}")
    lines: list[str] = [
        "# Benchmarks: loopchat, Node `ws` and Bun, side by side",
        "",
        f"<!-- Generated by benches/report.py from {display_path(results.folder)}; do not "
        "edit. Change report.py, or docs/bench/notes.md for the notes at the end, and "
        f"regenerate with `{regenerate}`. -->",
        "",
        commit_sentence(results, results_link),
        "",
        f"One run of `benches/compare.sh` on {meta.get('date_utc', 'an unknown date')}; "
        f"its raw results (one JSON per scenario and server, the machine and versions, the "
        f"commands, the profiler's outputs) are in [{results_link}]({results_link}), and "
        f"`{regenerate}` writes this page from them again. "
        "Each server is a raw relay: in broadcast mode every message goes, unchanged, to "
        "every other connected client; in echo mode back to its sender. Each server runs "
        f"pinned to CPU {meta.get('server_cpu', '0')} (`taskset`), the load generator "
        f"(`loopchat bench`) to CPU {meta.get('bench_cpu', '1')}, so a server has exactly "
        "one core, helper threads included. Every scenario starts each server afresh.",
        "",
        "- **loopchat**: `loopchat serve --mode broadcast|echo`, one thread, one `mio` loop.",
        "- **Node `ws`**: `benches/peers/ws_server.mjs`, the idiomatic relay (iterate "
        "`wss.clients`, skip the sender, `client.send(data, { binary })`).",
        "- **Bun**: `benches/peers/bun_server.js`, `Bun.serve` pub/sub (uWebSockets "
        "inside): every client subscribes to one topic and each message is "
        "`ws.publish`ed.",
        "",
        "Server CPU is the server process's user and system time over the measured "
        "interval, as the load generator reads it from `/proc`; per delivery, it is divided "
        "by the deliveries in that interval. Latency is from send to receipt, measured by "
        "the load generator. In the tables, a figure in parentheses is the ratio to "
        "loopchat's; ↑ marks figures where higher is better, ↓ where lower is.",
        "",
    ]
    if results.quick:
        lines += [
            "> **Smoke run (`--quick`)**: small C and one-second phases, to check the "
            "pipeline. These figures say nothing about performance and the targets below "
            "cannot be judged from them.",
            "",
        ]
    failed = [row for row in results.statuses if len(row) > 2 and row[2] != "ok"]
    if failed:
        lines += ["> **Runs that failed or were skipped** (see `logs/` in the results "
                  "folder): "
                  + ", ".join(f"{row[0]} on {PLAIN_TITLES.get(row[1], row[1])} ({row[2]})"
                              for row in failed), ""]

    rows = glance_rows(results)
    if rows:
        lines += ["## At a glance", "", glance_table(results), ""]

    # Targets.
    lines += [
        "## Targets",
        "",
        "The targets of the benchmark issue, for loopchat on this machine with the server "
        "on one core. They are goals for the benchmark, not tests; where one is compared "
        "with Bun, Bun's figure is the one measured in the same run.",
        "",
        md_table(["target", "measured", "result"],
                 [[t.text, t.measured, t.verdict] for t in targets(results)], "lll"),
        "",
    ]

    # Scenarios.
    metrics = {"broadcast": BROADCAST_METRICS, "fanout": BROADCAST_METRICS,
               "echo": ECHO_METRICS, "connections": CONNECTION_METRICS,
               "deflate-plain": DEFLATE_METRICS, "deflate": DEFLATE_METRICS,
               "deflate-connections": DEFLATE_CONNECTION_METRICS}
    for scenario, title, about in SCENARIOS:
        by_server = results.runs.get(scenario)
        if not by_server:
            continue
        clients = get(first_run(by_server), "clients")
        title = title.format(C=f"{clients:,}" if isinstance(clients, int) else "many")
        lines += [f"## {title}", "", about, ""]
        params = describe_run(first_run(by_server))
        if params:
            lines += [f"Parameters: {params}.", ""]
        lines += [scenario_table(by_server, servers, metrics[scenario]), ""]

    # Sweep.
    sweeps = {s: run["points"] for s, run in results.runs.get("sweep", {}).items()
              if isinstance(run.get("points"), list) and run["points"]}
    if sweeps:
        point = next(iter(sweeps.values()))[0]
        subtitle = (f"{describe_run({k: v for k, v in point.items() if k != 'clients'})}; "
                    f"server on one core; {meta.get('date_utc', '')}")
        svg_path.parent.mkdir(parents=True, exist_ok=True)
        svg_path.write_text(sweep_svg(sweeps, subtitle))
        relative = os.path.relpath(svg_path, output.parent)
        lines += [
            "## Broadcast sweep",
            "",
            "The broadcast scenario at several numbers of clients C, "
            f"{describe_run({k: v for k, v in point.items() if k != 'clients'})} "
            "at each point.",
            "",
            f"![Broadcast sweep: deliveries/s, server CPU per delivery and p99 latency "
            f"against C for each server]({relative})",
            "",
            sweep_table(sweeps, servers),
            "",
        ]

    lines += profile_section(results, results_link)

    # Machine and versions.
    rows = []
    for label, key in MACHINE_ROWS:
        if key is None:
            value = f"{meta.get('load_before', '?')} / {meta.get('load_after', '?')}"
        else:
            value = meta.get(key)
        if value:
            rows.append([label, value])
    lines += ["## Machine", "", md_table(["", ""], rows, "ll"), ""]
    rows = []
    if results.commit:
        state = {False: "tree as committed", True: "uncommitted changes",
                 None: "tree state not recorded"}[results.dirty]
        rows.append(["loopchat commit", f"`{results.commit}` ({state})"])
    rows += [[label, f"`{meta[key]}`"] for label, key in VERSION_ROWS if meta.get(key)]
    lines += ["## Versions", "", md_table(["", ""], rows, "ll"), ""]
    if meta.get("bun_spec") or meta.get("ws_spec"):
        lines += [f"Installed with npm: `{meta.get('ws_spec', '')}` (the latest 8.x at the "
                  f"time) and `{meta.get('bun_spec', '')}`.", ""]

    lines += commands_section(results)
    took = meta.get("runs_seconds")
    lines += [
        "To regenerate this page from the results beside it, or to measure again (on a "
        "quiet machine, from a committed tree"
        + (f"; the runs above took {took} s, plus the build and the npm install" if took
           else "")
        + "):",
        "",
        "```sh",
        (f"{regenerate}   # this page, from the results" if results.quick else
         f"{regenerate} --readme README.md   # this page and README's figures, from the results"),
        "benches/compare.sh   # measure again: replaces docs/bench/results/ and this page",
        "```",
        "",
    ]

    if results.gaps:
        lines += ["## Gaps in the data", "",
                  "Fields the load generator did not report, or reported as null (shown "
                  "as —):", ""]
        lines += [f"- `{gap}`" for gap in results.gaps] + [""]

    generated = "\n".join(lines)
    lines += notes_section(notes_path, generated, output)
    return "\n".join(lines).rstrip("\n") + "\n"


def display_path(path: Path) -> str:
    """A path as a reader in the repository's top folder would type it."""
    path = path.resolve()
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


def readme_block(results: Results, readme: Path, output: Path) -> str:
    """The README's figures: the "at a glance" table, naming the commit and the date."""
    page = os.path.relpath(output, readme.parent)
    folder = os.path.relpath(results.folder, readme.parent) + "/"
    commit = results.commit
    at = f"commit `{commit[:12]}`" if commit else "an unrecorded commit"
    if results.dirty:
        at += " with uncommitted changes"
    cpus = results.meta.get("cpu_count")
    machine = f"{cpus} CPUs, the server on one" if cpus else "the server on one core"
    return "\n".join([
        README_BEGIN,
        f"From the last run of `benches/compare.sh`, at {at} on "
        f"{results.meta.get('date_utc', 'an unknown date')} ({machine}; the machine, the "
        f"exact commands, every figure, the targets and the profile are in [{page}]({page}), "
        f"the raw results in [{folder}]({folder})):",
        "",
        glance_table(results),
        README_END,
    ])


def update_readme(results: Results, readme: Path, output: Path) -> None:
    text = readme.read_text()
    start, end = text.find(README_BEGIN), text.find(README_END)
    if not 0 <= start < end:
        raise SystemExit(f"report.py: {readme} has no block between\n  {README_BEGIN}\n"
                         f"and\n  {README_END}")
    block = readme_block(results, readme, output)
    readme.write_text(text[:start] + block + text[end + len(README_END):])


def main() -> int:
    parser = argparse.ArgumentParser(
        description="Write docs/BENCHMARKS.md from a results folder of benches/compare.sh.")
    parser.add_argument("results", type=Path,
                        help="the results folder (docs/bench/results for the published run)")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT,
                        help="the Markdown file to write (default: docs/BENCHMARKS.md)")
    parser.add_argument("--svg-dir", type=Path, default=DEFAULT_SVG_DIR,
                        help="where the sweep chart goes (default: docs/bench)")
    parser.add_argument("--notes", type=Path, default=NOTES,
                        help="the notes written by hand, copied at the end "
                             "(default: docs/bench/notes.md)")
    parser.add_argument("--readme", type=Path,
                        help="also replace this file's block between the bench-figures "
                             "markers with the 'at a glance' table (README.md)")
    args = parser.parse_args()

    if not args.results.is_dir():
        parser.error(f"{args.results} is not a folder")
    results = load(args.results.resolve())
    if not results.runs:
        print(f"report.py: no results (*.json) in {args.results}", file=sys.stderr)
        return 1
    output = args.output.resolve()
    if args.readme and results.quick:
        parser.error("--readme with the results of a smoke run (--quick): the README shows "
                     "real figures only")
    if output == DEFAULT_OUTPUT and results.quick:
        parser.error("the results of a smoke run (--quick) cannot replace docs/BENCHMARKS.md; "
                     "give --output and --svg-dir")
    if output == DEFAULT_OUTPUT and results.folder != PUBLISHED:
        parser.error(f"docs/BENCHMARKS.md is written only from {display_path(PUBLISHED)}, "
                     "the results committed beside it (benches/compare.sh copies a full run "
                     "there); for other results give --output and --svg-dir")
    svg_path = args.svg_dir.resolve() / "sweep.svg"
    text = build(results, output, svg_path, args.notes.resolve())
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text)
    print(f"report.py: wrote {output}" + (f" and {svg_path}" if "sweep" in results.runs else ""),
          file=sys.stderr)
    if args.readme:
        update_readme(results, args.readme.resolve(), output)
        print(f"report.py: wrote the figures block of {args.readme}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
