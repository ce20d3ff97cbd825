"""CPU time of the local broker's JIT compiler threads (Linux only), so that a latency run can
say whether it shared its cores with them.

On a broker just started, HotSpot's C2 compiler takes a whole core for 100–300 ms at a time for
minutes (docs/benchmarks.md, "The load's own produce requests, and the broker's compiler"); on
two cores that is a stall of every stage at once.
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def broker_pid(bootstrap_servers: str) -> int | None:
    """The pid of the broker ``scripts/kafka.sh`` started for this port (its default
    ``KAFKA_DIR``), or None when it is not one of ours or not running."""
    port = bootstrap_servers.split(",")[0].rpartition(":")[2]
    folder = Path(os.environ.get("KAFKA_DIR", ROOT / ".cache" / "kafka" / "run" / port))
    try:
        pid = int((folder / "kafka.pid").read_text())
    except (OSError, ValueError):
        return None
    return pid if Path(f"/proc/{pid}").exists() else None


def compiler_cpu(pid: int | None) -> dict[int, int]:
    """Nanoseconds on CPU so far of each JIT compiler thread of process ``pid`` (empty when
    unknown)."""
    if pid is None:
        return {}
    times: dict[int, int] = {}
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            if (task / "comm").read_text().startswith(("C1 CompilerThre", "C2 CompilerThre")):
                times[int(task.name)] = int((task / "schedstat").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            continue  # the thread ended meanwhile
    return times


def compiled_between(before: dict[int, int], after: dict[int, int]) -> float:
    """Seconds the compiler threads ran between two ``compiler_cpu`` readings (threads that
    ended in between are not counted, so at least this much)."""
    return sum(ns - before.get(tid, 0) for tid, ns in after.items()) / 1e9
