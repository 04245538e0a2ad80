#!/usr/bin/env python3
"""Samples a loopchat admin port's /stats, for benches/experiments.sh.

    stats_sampler.py URL --every 0.25 --for 20 [--pid PID] > samples.jsonl

A sample is one JSON object a line: `t` (seconds since the first sample), the server's
totals, open connections, queued outbound bytes, the largest single queue (the slowest
consumer's), and with --pid the server's resident memory from /proc. The recent turns
and histograms of /stats are left out: they are what the live page shows, and would make
the raw results a hundred times larger. Python 3.11 standard library only.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.request


def fetch(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)


def rss_kib(pid: int | None) -> int | None:
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def compact(stats: dict, t: float, pid: int | None) -> dict:
    consumers = stats.get("slowest_consumers") or []
    return {
        "t": round(t, 3),
        "totals": stats.get("totals", {}),
        "open": stats.get("connections", {}).get("open"),
        "queued_outbound_bytes": stats.get("queued_outbound_bytes"),
        "largest_queue_bytes": max((c.get("queued_bytes", 0) for c in consumers), default=0),
        "rss_kib": rss_kib(pid),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--every", type=float, default=0.25)
    parser.add_argument("--for", dest="duration", type=float, default=10.0)
    parser.add_argument("--pid", type=int)
    args = parser.parse_args()
    start = time.monotonic()
    next_at = start
    while time.monotonic() - start < args.duration:
        now = time.monotonic()
        try:
            sample = compact(fetch(args.url), now - start, args.pid)
        except OSError as error:
            print(f"stats_sampler: {error}", file=sys.stderr)
            return 1
        print(json.dumps(sample), flush=True)
        next_at += args.every
        time.sleep(max(0.0, next_at - time.monotonic()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
