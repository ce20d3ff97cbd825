"""Run a ``trialguard`` command with tracemalloc on, dumping a snapshot at each SIGUSR1.

    python bench/mem_probe.py OUT_PREFIX -- <trialguard arguments>

Each SIGUSR1 writes ``OUT_PREFIX-<n>.snap`` (``tracemalloc.Snapshot.dump``) and appends a JSON
line to ``OUT_PREFIX.jsonl``: the RSS, tracemalloc's traced total and glibc's ``mallinfo2``
(bytes in use and free inside its arenas), so that traced growth can be set against RSS growth.
``TRIALGUARD_TRACE_FRAMES`` sets the frames kept per allocation (default 8; 0: no tracemalloc,
only the figures: the RSS of the product as it runs). Used by
``bench/mem_soak.py``; a measuring tool, not part of the product.
"""

from __future__ import annotations

import ctypes
import json
import os
import re
import runpy
import signal
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from types import FrameType


class _Mallinfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
                 "keepcost")]  # fmt: skip


def _mallinfo() -> dict[str, int]:
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallinfo2.restype = _Mallinfo2
        info = libc.mallinfo2()
    except (OSError, AttributeError):
        return {}
    return {"arena": info.arena, "mmapped": info.hblkhd, "in_use": info.uordblks, "free": info.fordblks}


def _rss() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def _smaps() -> dict[str, object]:
    """Resident bytes by kind of mapping: glibc's main heap, anonymous mappings (pymalloc's 1 MiB
    arenas, glibc's thread arenas, thread stacks, big blocks), shared memory, files (code, data);
    and the anonymous ones' resident bytes by the mapping's size in KiB (``anon_by_size``: 8,192
    a thread's stack, 65,536 a glibc thread arena, 1,024 a pymalloc arena), and the threads."""
    kinds = {"heap": 0, "anon": 0, "shmem": 0, "file": 0}
    by_size: dict[str, int] = {}
    kind, size = "anon", 0
    with open("/proc/self/smaps") as smaps:
        for line in smaps:
            head = line.split()
            if not head:
                continue
            if "-" in head[0] and not head[0].endswith(":"):
                path = head[5] if len(head) > 5 else ""
                kind = ("heap" if path == "[heap]" else "anon" if not path or path.startswith("[") else
                        "shmem" if path.endswith("-shm") or "/shm/" in path else "file")  # fmt: skip
                start, end = (int(x, 16) for x in head[0].split("-"))
                size = (end - start) // 1024
            elif head[0] == "Rss:":
                kinds[kind] += int(head[1]) * 1024
                if kind == "anon" and int(head[1]):
                    by_size[str(size)] = by_size.get(str(size), 0) + int(head[1]) * 1024
    return {**kinds, "anon_by_size": by_size, "threads": len(os.listdir("/proc/self/task"))}


def _pymalloc() -> dict[str, int]:
    """pymalloc's arenas and the bytes in use in them (``sys._debugmallocstats``, read from fd 2)."""
    with tempfile.TemporaryFile("w+") as out:
        saved = os.dup(2)
        sys.stderr.flush()
        os.dup2(out.fileno(), 2)
        try:
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        out.seek(0)
        text = out.read()
    found = {}
    for name, pattern in (("pymalloc_arenas", r"# arenas allocated current\s*=\s*([\d,]+)"),
                          ("pymalloc_used", r"# bytes in allocated blocks\s*=\s*([\d,]+)")):  # fmt: skip
        match = re.search(pattern, text)
        if match:
            found[name] = int(match.group(1).replace(",", ""))
    return found


def main() -> None:
    split = sys.argv.index("--")
    prefix = sys.argv[1]
    command = sys.argv[split + 1 :]
    frames = int(os.environ.get("TRIALGUARD_TRACE_FRAMES", "8"))
    if frames:
        tracemalloc.start(frames)
    dumps = [0]
    started = time.monotonic()

    def dump(_signum: int, _frame: FrameType | None) -> None:
        dumps[0] += 1
        if frames:
            tracemalloc.take_snapshot().dump(f"{prefix}-{dumps[0]}.snap")
        traced, peak = tracemalloc.get_traced_memory()
        line = {"n": dumps[0], "seconds": round(time.monotonic() - started, 1), "rss": _rss(), "traced": traced,
                "peak": peak, "tracemalloc_overhead": tracemalloc.get_tracemalloc_memory(), **_mallinfo(), **_smaps(),
                **_pymalloc()}  # fmt: skip
        with open(f"{prefix}.jsonl", "a") as out:
            out.write(json.dumps(line) + "\n")

    signal.signal(signal.SIGUSR1, dump)
    sys.argv = ["trialguard", *command]
    runpy.run_module("services.cli", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
