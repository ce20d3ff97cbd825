"""Keeps large transient buffers out of glibc's main heap in the long-running servers.

glibc serves a block of 128 KiB or more with a mapping of its own, given back when it is freed —
until the first such block is freed: from then on it raises that threshold to the block's size
(up to 32 MiB) and lets the heap keep twice that unused at its top. Measured at a soak's load
(bench/mem_soak.py: the gateway and the dashboard at 200 events/s for 22 minutes; docs/benchmarks.md,
"Soak: what grows in the gateway and the dashboard"): after minute 8 the heap's free bytes climbed
2.4 -> 6.6 MiB in the dashboard and 2.6 -> 5.2 MiB in the gateway while the bytes in use, pymalloc's
arenas and the traced Python heap stayed flat, most of their RSS growth. Which large blocks (Kafka
fetch responses and what is decoded from them are the likely ones) was not traced; with the
threshold fixed (what ``MALLOC_MMAP_THRESHOLD_`` does before start, ``mallopt`` at run time) the
free bytes stayed at about 1 MiB. The trim threshold is set back to its default with it.

And every few seconds the free pages are given back (``giving_back_free_memory``). Allocations
that vary in size — snapshots, seen ids a few bytes longer at each event — leave free chunks
between live ones, and the resident memory goes on counting their pages: measured on the rules
service at the soak's load (200 events/s), glibc's bytes in use stayed at 17 MiB while its free
bytes went from 3.5 to 9.4 MiB in seven minutes, and the RSS with them. ``malloc_trim(0)`` hands
every whole free page back (glibc ≥ 2.8 releases pages inside the heap too, not only at its
top): in the same run 1–5 MiB at each call, in well under a millisecond. Elsewhere than glibc
the call does not exist and this does nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import os

import structlog

from services.background import in_background

log = structlog.get_logger("trialguard.allocator")

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
"""glibc's ``mallopt`` parameters (malloc.h)."""
MMAP_THRESHOLD = 128 * 1024
"""glibc's default threshold, kept fixed instead of growing."""
TRIM_THRESHOLD = 128 * 1024
"""glibc's default: the free bytes kept at the heap's top (the import of the web stack may already
have raised it with the mmap threshold: set back too)."""


def fix_mmap_threshold(threshold: int = MMAP_THRESHOLD) -> bool:
    """Fix glibc's mmap threshold at ``threshold`` bytes for this process.

    Left alone when the operator chose one (``MALLOC_MMAP_THRESHOLD_``, or ``GLIBC_TUNABLES``
    naming ``glibc.malloc.mmap_threshold``), and a no-op off glibc.

    Returns:
        Whether the threshold was set here.
    """
    if "MALLOC_MMAP_THRESHOLD_" in os.environ or "mmap_threshold" in os.environ.get("GLIBC_TUNABLES", ""):
        return False
    try:
        glibc = (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc")
        libc = ctypes.CDLL(ctypes.util.find_library("c")) if glibc else None
    except (ValueError, OSError):  # no such confstr name (not glibc), or no C library to load
        return False
    mallopt = getattr(libc, "mallopt", None)
    if mallopt is None:
        return False
    done = bool(mallopt(M_MMAP_THRESHOLD, threshold)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    log.debug("mmap_threshold_fixed", bytes=threshold, done=done)
    return done


TRIM_SECONDS = 15.0
"""How often free memory is given back."""


def _malloc_trim() -> ctypes._NamedFuncPointer | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        return ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        return None


_TRIM = _malloc_trim()


def give_back_free_memory() -> bool:
    """Hand glibc's free pages back to the operating system; whether any were (False where the
    C library has no ``malloc_trim``)."""
    return bool(_TRIM is not None and _TRIM(0))


def giving_back_free_memory(seconds: float = TRIM_SECONDS) -> contextlib.AbstractAsyncContextManager[None]:
    """While in the block, give free memory back every ``seconds`` (a long-running command's body)."""
    return in_background(_every(seconds), name="memory-trim")


async def _every(seconds: float) -> None:
    if _TRIM is None:
        log.info("memory_trim_unavailable")
        return
    while True:
        await asyncio.sleep(seconds)
        give_back_free_memory()
