#!/usr/bin/env python3
"""The CPU time each thread of a process used over a window, for benches/experiments.sh.

    thread_cpu.py PID --after 1.5 --for 3 > threads.json

Waits --after seconds, reads the time every thread has spent on a CPU from
/proc/PID/task/TID/schedstat (in nanoseconds: the scheduler's own count, not the
10-millisecond ticks of /proc/PID/task/TID/stat, which a thread busy for a few
milliseconds would show as 0 or 1 tick), waits --for seconds, reads them again, and
prints one JSON object: `window_s`, and `threads`, each thread's name (its comm, as the
server names them: lc-worker-N, lc-chat-hub) and the CPU seconds it used in the window.
Threads of the same name are summed. Python 3.11 standard library only.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

def threads(pid: int) -> dict[str, float]:
    used: dict[str, float] = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/comm") as comm:
                name = comm.read().strip()
            with open(f"/proc/{pid}/task/{tid}/schedstat") as schedstat:
                on_cpu_ns = int(schedstat.read().split()[0])
        except (OSError, ValueError, IndexError):
            continue
        used[name] = used.get(name, 0.0) + on_cpu_ns / 1e9
    return used


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pid", type=int)
    parser.add_argument("--after", type=float, default=1.0)
    parser.add_argument("--for", dest="span", type=float, required=True)
    args = parser.parse_args()
    time.sleep(args.after)
    before, started = threads(args.pid), time.monotonic()
    time.sleep(args.span)
    after, ended = threads(args.pid), time.monotonic()
    used = {name: round(cpu - before.get(name, 0.0), 6) for name, cpu in after.items()}
    json.dump({"window_s": round(ended - started, 3), "threads": used}, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
