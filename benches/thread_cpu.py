#!/usr/bin/env python3
"""The CPU time each thread of a process used over a window, for benches/experiments.sh.

    thread_cpu.py PID --after 1.5 --for 3 > threads.json

Waits --after seconds, reads every thread's user and system time from
/proc/PID/task/TID/stat, waits --for seconds, reads them again, and prints one JSON
object: `window_s`, and `threads`, each thread's name (its comm, as the server names
them: lc-worker-N, lc-chat-hub) and the CPU seconds it used in the window. Threads of the
same name are summed. Python 3.11 standard library only.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

TICKS = os.sysconf("SC_CLK_TCK")


def threads(pid: int) -> dict[str, float]:
    used: dict[str, float] = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as stat:
                text = stat.read()
        except OSError:
            continue
        # The name is in parentheses and may hold spaces; the fields after it are fixed.
        name = text[text.index("(") + 1 : text.rindex(")")]
        fields = text[text.rindex(")") + 2 :].split()
        utime, stime = int(fields[11]), int(fields[12])
        used[name] = used.get(name, 0.0) + (utime + stime) / TICKS
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
    used = {name: round(cpu - before.get(name, 0.0), 3) for name, cpu in after.items()}
    json.dump({"window_s": round(ended - started, 3), "threads": used}, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
