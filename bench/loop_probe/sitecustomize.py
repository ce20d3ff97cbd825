"""Which callbacks hold an event loop, and which garbage collections: a measuring tool, not part
of the product.

Put this folder first on ``PYTHONPATH`` and set ``TRIALGUARD_LOOP_PROBE`` to a folder: every
Python process started so (a benchmark and the services it starts) appends to
``<folder>/loop.<pid>`` one line per event-loop callback that ran longer than
``TRIALGUARD_LOOP_PROBE_MS`` (default 15) and per garbage collection longer than 5 ms, each with
its wall-clock time, to set beside a benchmark's slowest triggers and a broker's GC log::

    TRIALGUARD_LOOP_PROBE=/tmp/probe PYTHONPATH=bench/loop_probe \\
        .venv/bin/python bench/live.py --skip-throughput --skip-restore

A stall that every partition waits out but no line names was not the process's own code nor its
collector (docs/benchmarks.md, "Live: the stalls are not the service's").
"""

from __future__ import annotations

import asyncio.events
import gc
import os
import time
from typing import Any

_folder = os.environ.get("TRIALGUARD_LOOP_PROBE")
if _folder:
    os.makedirs(_folder, exist_ok=True)
    _log = open(os.path.join(_folder, f"loop.{os.getpid()}"), "a", buffering=1)  # noqa: SIM115  # open for the process's life
    _longer_than = float(os.environ.get("TRIALGUARD_LOOP_PROBE_MS", "15")) / 1000
    _run = asyncio.events.Handle._run
    _collecting = [0.0]

    def _timed_run(self: asyncio.events.Handle) -> None:
        started = time.perf_counter()
        _run(self)
        took = time.perf_counter() - started
        if took > _longer_than:
            callback: Any = self._callback  # type: ignore[attr-defined]
            owner = getattr(callback, "__self__", None)
            if owner is not None and hasattr(owner, "get_coro"):
                coro = owner.get_coro()
                name = f"task {getattr(coro, '__qualname__', coro)}"
            else:
                name = getattr(callback, "__qualname__", repr(callback))
            _log.write(f"{time.time():.3f} callback {took * 1000:.1f} ms {name}\n")

    def _on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            _collecting[0] = time.perf_counter()
            return
        took = time.perf_counter() - _collecting[0]
        if took > 0.005:
            _log.write(f"{time.time():.3f} gc generation {info['generation']} {took * 1000:.1f} ms\n")

    asyncio.events.Handle._run = _timed_run  # type: ignore[method-assign]
    gc.callbacks.append(_on_gc)
