#!/usr/bin/env python3
"""Summarises an A/B run of benches/ab.sh: server CPU per delivery of two loopchat builds.

    python3 benches/ab.py RESULTS_DIR [--limit 5]

Reads the folder ab.sh left (`rNN.A.json` and `rNN.B.json`, what `loopchat bench
broadcast --json` printed for each run, and `meta.tsv`), prints a Markdown summary and
writes it to `summary.md` in the folder. For each binary: the runs, the median server CPU
per delivery, its range and spread ((max − min) / median); then NEW/OLD as the ratio of
the medians and as each round's B over its A, and whether the ratio of the medians is
within ±limit %. Every figure is computed from the JSON; run it again to check.

Python 3.11 standard library only.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
from pathlib import Path
from typing import Any

# Shared with the report; benches/ is on the path when this runs as a script.
from report import get, md_table  # noqa: E402

RUN = re.compile(r"^r(\d+)\.([AB])\.json$")


def load_meta(folder: Path) -> dict[str, str]:
    meta = {}
    path = folder / "meta.tsv"
    if path.exists():
        for line in path.read_text().splitlines():
            key, _, value = line.partition("\t")
            if key:
                meta[key] = value
    return meta


def fmt_ns(v: float | None) -> str:
    return "—" if v is None else f"{v:,.1f} ns"


def fmt_rate(v: float | None) -> str:
    if v is None:
        return "—"
    return f"{v / 1e6:.2f} M/s" if v >= 1e6 else f"{v / 1e3:.0f} k/s"


def summary(folder: Path, limit: float) -> str:
    meta = load_meta(folder)
    runs: dict[int, dict[str, dict[str, Any]]] = {}
    for path in sorted(folder.glob("r*.json")):
        m = RUN.match(path.name)
        if not m:
            continue
        try:
            runs.setdefault(int(m.group(1)), {})[m.group(2)] = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as error:
            print(f"ab.py: skipping {path}: {error}", file=sys.stderr)
    label = {"A": meta.get("label_a", "A"), "B": meta.get("label_b", "B")}
    name = {side: f"{side} ({label[side]})" if label[side] != side else side for side in "AB"}

    def values(side: str, path: str) -> list[float]:
        return [v for r in sorted(runs) if isinstance(v := get(runs[r].get(side), path),
                                                     (int, float))]

    first = next((run for r in sorted(runs) for run in runs[r].values()), {})
    params = (f"C={get(first, 'clients'):,}, S={get(first, 'senders')}, "
              f"{get(first, 'size')}-byte messages, window {get(first, 'window')}, "
              f"{get(first, 'duration_s')} s measured") if first else "no runs"
    lines = [
        "# A/B: server CPU per delivery, broadcast scenario",
        "",
        f"Written by `benches/ab.py` from the JSON in this folder ({folder.name}). "
        f"{params}; the server pinned to CPU {meta.get('server_cpu', '0')}, the load "
        f"generator to CPU {meta.get('bench_cpu', '1')}; {meta.get('rounds', '?')} rounds, "
        "each running both binaries, freshly started, the order alternating (A B, then "
        f"B A, ...); run on {meta.get('date_utc', '?')}.",
        "",
    ]
    if meta.get("quick") == "1":
        lines += ["> **Smoke run (`--quick`)**: small C and short phases, to check the "
                  "script. These figures say nothing about speed.", ""]
    rows = []
    for side in "AB":
        sha = meta.get(f"sha256_{side.lower()}", "")
        rows.append([name[side], f"`{meta.get(f'binary_{side.lower()}', '?')}`",
                     f"`{sha[:16]}`", meta.get(f"mtime_{side.lower()}", "?")])
    lines += [md_table(["", "binary", "sha256 (start)", "modified"], rows, "llll"), ""]
    generator = meta.get("generator", "?")
    lines += [f"Load generator for both: `{generator}` (sha256 "
              f"`{meta.get('generator_sha256', '')[:16]}`). Scripts from commit "
              f"`{meta.get('commit', '?')}`"
              + (" with uncommitted changes" if meta.get("dirty") == "1" else "")
              + f". Load average before / after: {meta.get('load_before', '?')} / "
              f"{meta.get('load_after', '?')}.", ""]

    stats: dict[str, float | None] = {}
    rows = []
    for side in "AB":
        ns = values(side, "server.cpu_ns_per_delivery")
        rates = values(side, "deliveries_per_s")
        lost = values(side, "lost")
        median = statistics.median(ns) if ns else None
        stats[side] = median
        spread = f"{(max(ns) - min(ns)) / median * 100:.1f} %" if ns and median else "—"
        rows.append([name[side], str(len(ns)), fmt_ns(median),
                     fmt_ns(min(ns)) if ns else "—", fmt_ns(max(ns)) if ns else "—", spread,
                     fmt_rate(statistics.median(rates)) if rates else "—",
                     f"{sum(lost):,.0f}" if lost else "—"])
    lines += [md_table(["", "runs", "median CPU/delivery", "min", "max", "spread",
                        "median deliveries/s", "lost"], rows, "lrrrrrrr"), ""]

    pairs = []
    for r in sorted(runs):
        a = get(runs[r].get("A"), "server.cpu_ns_per_delivery")
        b = get(runs[r].get("B"), "server.cpu_ns_per_delivery")
        if isinstance(a, (int, float)) and isinstance(b, (int, float)) and a > 0:
            pairs.append((r, a, b, b / a))
    a_med, b_med = stats["A"], stats["B"]
    if a_med and b_med:
        ratio = b_med / a_med
        change = (ratio - 1) * 100
        within = abs(change) <= limit
        if meta.get("quick") == "1":
            verdict = "not judged (smoke run)"
        else:
            verdict = f"**{'within' if within else 'not within'} ±{limit:g} %**"
        lines += [
            f"**B/A, ratio of the medians: {ratio:.3f}** (B uses {abs(change):.1f} % "
            f"{'more' if change > 0 else 'less'} server CPU per delivery than A): {verdict}.",
            "",
        ]
        if pairs:
            per_round = [p[3] for p in pairs]
            lines += [f"B/A round by round: median {statistics.median(per_round):.3f}, from "
                      f"{min(per_round):.3f} to {max(per_round):.3f} over {len(pairs)} "
                      f"round{'s' if len(pairs) != 1 else ''}.", ""]
        fewest = min(len(values(s, "server.cpu_ns_per_delivery")) for s in "AB")
        if fewest < 3:
            lines += [f"> With {fewest} run{'s' if fewest != 1 else ''} of a side, this run "
                      "has no useful measure of its own noise: use the default 6 rounds or "
                      "more for a verdict.", ""]
        noisy = [name[s] for s in "AB"
                 if len(values(s, "server.cpu_ns_per_delivery")) > 1
                 and (max(values(s, "server.cpu_ns_per_delivery"))
                      - min(values(s, "server.cpu_ns_per_delivery"))) / stats[s] * 100 > limit]
        if noisy:
            lines += [f"> The spread of {' and '.join(noisy)} is wider than ±{limit:g} %: "
                      "this run cannot tell a difference of that size from noise. Run it on "
                      "a quiet machine, or with more rounds.", ""]
    else:
        lines += ["No ratio: one side has no successful run.", ""]

    rows = []
    for r in sorted(runs):
        order = "A B" if r % 2 else "B A"
        a = get(runs[r].get("A"), "server.cpu_ns_per_delivery")
        b = get(runs[r].get("B"), "server.cpu_ns_per_delivery")
        pair = next((p for p in pairs if p[0] == r), None)
        rows.append([str(r), order, fmt_ns(a), fmt_ns(b),
                     f"{pair[3]:.3f}" if pair else "—"])
    if rows:
        lines += ["Each round (files `rNN.A.json`, `rNN.B.json`):", "",
                  md_table(["round", "order", "A", "B", "B/A"], rows, "rlrrr"), ""]
    failed = [line for line in (folder / "runs.tsv").read_text().splitlines()
              if line.split("\t")[2:3] != ["ok"]] if (folder / "runs.tsv").exists() else []
    if failed:
        lines += ["Runs that failed (see `logs/`): "
                  + "; ".join(" ".join(f.split("\t")[:3]) for f in failed), ""]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description="Summarise an A/B run of benches/ab.sh.")
    parser.add_argument("results", type=Path, help="the folder ab.sh wrote")
    parser.add_argument("--limit", type=float, default=5.0,
                        help="the change, in percent, that counts as within (default 5)")
    args = parser.parse_args()
    if not args.results.is_dir():
        parser.error(f"{args.results} is not a folder")
    text = summary(args.results, args.limit)
    (args.results / "summary.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
