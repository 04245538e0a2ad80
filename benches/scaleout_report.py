#!/usr/bin/env python3
"""Writes the scale-out benchmark's table (README.md) from the raw results of
benches/scaleout.sh; every figure is read or computed from those files.

  python3 benches/scaleout_report.py docs/bench/scaleout [--commit SHORT]
  python3 benches/scaleout_report.py RESULTS_DIR --plain --output RESULTS_DIR/README.md

Published results are named <commit>.<file> (<commit>.meta.tsv, <commit>.runs.tsv,
<commit>.<run>.json); without --commit the commit of the newest meta.tsv is used.
--plain reads a results folder as the script wrote it (meta.tsv, runs.tsv, <run>.json).
"""

import argparse
import json
import os
import sys


def read_tsv(path):
    rows = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                rows.append(line.rstrip("\n").split("\t"))
    return rows


def fmt(value, spec, missing="n/a"):
    return missing if value is None else format(value, spec)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder")
    parser.add_argument("--commit")
    parser.add_argument("--plain", action="store_true")
    parser.add_argument("--output")
    args = parser.parse_args()
    folder = args.folder
    if args.plain:
        prefix = ""
    else:
        commit = args.commit
        if not commit:
            metas = [f for f in os.listdir(folder) if f.endswith(".meta.tsv")]
            if not metas:
                sys.exit(f"no <commit>.meta.tsv in {folder}")
            commit = max(metas, key=lambda f: os.path.getmtime(os.path.join(folder, f))).split(".")[0]
        prefix = commit + "."
    meta = dict(row[:2] for row in read_tsv(os.path.join(folder, prefix + "meta.tsv")) if len(row) >= 2)
    runs = read_tsv(os.path.join(folder, prefix + "runs.tsv"))
    output = args.output or os.path.join(folder, "README.md")

    lines = []
    commit_full = meta.get("commit", "?")
    dirty = " (the tree differed from it: see the git-status file)" if meta.get("dirty") == "1" else ""
    lines.append("# Scale-out benchmark: one chat on several instances sharing a Redis")
    lines.append("")
    lines.append("Written by `benches/scaleout_report.py` from the raw results in this folder; do not edit by hand.")
    lines.append("Run again with `benches/scaleout.sh` (see its header for the settings).")
    lines.append("")
    lines.append(f"- commit: `{commit_full}`{dirty}, {meta.get('commit_subject', '')[:100]}")
    lines.append(f"- date: {meta.get('date_utc', '?')}; machine: {meta.get('cpu_model', '?')}, "
                 f"{meta.get('cpu_count', '?')} CPUs, {meta.get('memory', '?')}, {meta.get('kernel', '?')}; "
                 f"load average before {meta.get('load_before', '?')}, after {meta.get('load_after', '?')}")
    lines.append(f"- servers and Redis pinned to CPU {meta.get('server_cpu', '?')}, the load generator to CPU "
                 f"{meta.get('bench_cpu', '?')}; {meta.get('redis_server', 'redis ?')}")
    versions = [f"{k} {meta[k]}" for k in ("loopchat", "node", "socket.io", "socket.io-redis-adapter", "node-redis",
                                           "socket.io-client", "ws") if k in meta]
    if versions:
        lines.append("- versions: " + ", ".join(versions))
    if "sio_client" in meta:
        lines.append(f"- Socket.IO load generator client: `{meta['sio_client']}` (benches/peers/socketio/load.js --client)")
    lines.append(f"- scenario: {meta.get('clients', '?')} clients (client i on instance i mod n), "
                 f"{meta.get('senders', '?')} senders, {meta.get('size', '?')}-byte messages, one room, every message "
                 f"to every client (its sender included); {meta.get('duration', '?')} s measured")
    lines.append("")
    lines.append("| run | msg/s | deliveries/s | p50 ms | p99 ms | lost | Redis cmds/msg | Redis CPU µs/msg "
                 "| servers CPU ns/delivery | generator CPU % | generator saturated | status |")
    lines.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|")
    for row in runs:
        run, setup, status = row[0], row[1], row[2]
        path = os.path.join(folder, prefix + run + ".json")
        if status != "ok" or not os.path.exists(path):
            lines.append(f"| {run} | | | | | | | | | | | {status} |")
            continue
        r = json.load(open(path, encoding="utf-8"))
        lat = r.get("latency_us") or {}
        redis = r.get("redis") or {}
        window = r.get("servers_window") or {}
        gen = r.get("generator") or {}
        saturated = gen.get("saturated")
        if saturated is None:
            lag = (r.get("send_lag_us") or {}).get("p99") or 0
            saturated = (r.get("bench_cpu_pct") or 0) > 85 or lag > 5000
        notes = "" if (r.get("details") or {}).get("drain_complete", True) else ", drain incomplete"
        lines.append(
            f"| {run} | {fmt(r.get('total_rate'), 'g')} | {fmt(r.get('deliveries_per_s'), ',.0f')} "
            f"| {fmt(lat.get('p50') and lat['p50'] / 1000, '.1f')} | {fmt(lat.get('p99') and lat['p99'] / 1000, '.1f')} "
            f"| {fmt(r.get('lost'), ',')} | {fmt(redis.get('commands_per_message'), '.2f')} "
            f"| {fmt(redis.get('redis_cpu_us_per_message'), '.1f')} | {fmt(window.get('cpu_ns_per_delivery'), ',.0f')} "
            f"| {fmt(r.get('bench_cpu_pct'), '.0f')} | {'yes' if saturated else 'no'} | {status}{notes} |")
    lines.append("")
    lines.append("- msg/s: chat messages sent per second, all senders together; deliveries/s: messages received "
                 "inside the measured window, per second, senders' own copies not counted (as `loopchat bench`).")
    lines.append("- p50, p99: from each message's scheduled send time to its receipt, messages scheduled inside "
                 "the measured window.")
    lines.append("- lost: deliveries that never arrived, senders' own copies included.")
    lines.append("- Redis cmds/msg: calls counted by Redis's INFO commandstats (after CONFIG RESETSTAT) over a "
                 "window inside the measured one, divided by the messages sent in it; n/a without Redis. "
                 "Redis CPU µs/msg: redis-server's CPU time over the same window per message.")
    lines.append("- servers CPU ns/delivery: all instances' CPU time over that window per delivery.")
    lines.append("- generator saturated: the load generator used more than 85 % of its core, or (load.js) its event "
                 "loop was busy more than 90 % of the window: the row then measures the generator, not the servers.")
    lines.append("- *.step-R runs: `--find-max`, the same setup at increasing rates until it loses a message; a "
                 "saturated generator does not stop the steps (its loss count is exact; its latencies are not the "
                 "servers' alone).")
    with open(output, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    print(f"wrote {output}")


if __name__ == "__main__":
    main()
