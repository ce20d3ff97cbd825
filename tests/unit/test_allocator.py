"""services/allocator.py: glibc's mmap threshold stays fixed after a large block is freed.

Run in a child interpreter: the threshold is process-wide, and the test must see glibc's own
default behaviour first (a freed block of 1 MiB raises it) to show that the fix changes it.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

glibc = (os.confstr("CS_GNU_LIBC_VERSION") or "") if hasattr(os, "confstr") else ""
pytestmark = pytest.mark.skipif(not glibc.startswith("glibc"), reason="glibc's allocator only")

PROBE = """
import ctypes, sys
from services.allocator import fix_mmap_threshold
class Info(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                "fsmblks", "uordblks", "fordblks", "keepcost")]
libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = Info
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
libc.free(libc.malloc(1 << 20))  # glibc now raises its threshold past 1 MiB (as imports may do)
if sys.argv[1] == "fixed":
    assert fix_mmap_threshold()
libc.free(libc.malloc(1 << 20))
before = libc.mallinfo2().hblks
block = libc.malloc(256 * 1024)
print(libc.mallinfo2().hblks - before)  # 1: the block got a mapping of its own
libc.free(block)
"""


def mapped_blocks(mode: str) -> int:
    """Mappings a 256 KiB block got (glibc's own settings only: no MALLOC_* or GLIBC_TUNABLES)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MALLOC_", "GLIBC_TUNABLES"))}
    done = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True,
                          env=env)  # fmt: skip
    return int(done.stdout.split()[-1])


def test_without_the_fix_glibc_moves_a_256_kib_block_into_the_heap_after_a_1_mib_one_was_freed() -> None:
    assert mapped_blocks("default") == 0


def test_with_the_fix_a_256_kib_block_keeps_a_mapping_of_its_own() -> None:
    assert mapped_blocks("fixed") == 1


def test_an_operators_own_setting_is_left_alone() -> None:
    script = "from services.allocator import fix_mmap_threshold; print(fix_mmap_threshold())"
    for env in ({"MALLOC_MMAP_THRESHOLD_": "65536"}, {"GLIBC_TUNABLES": "glibc.malloc.mmap_threshold=65536"}):
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                              env={**os.environ, **env})  # fmt: skip
        assert done.stdout.split()[-1] == "False"
