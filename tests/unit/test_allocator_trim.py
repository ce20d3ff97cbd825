"""services/allocator.py: free memory is given back to the operating system while a long-running command runs."""

from __future__ import annotations

import asyncio

import pytest

from services import allocator as memory


def test_glibc_is_asked_to_give_free_pages_back() -> None:
    assert memory._TRIM is not None  # this machine's C library is glibc
    assert isinstance(memory.give_back_free_memory(), bool)


async def test_free_memory_is_given_back_repeatedly_while_in_the_block(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    thrice = asyncio.Event()

    def trim(pad: int) -> int:
        calls.append(pad)
        if len(calls) >= 3:
            thrice.set()
        return 1

    monkeypatch.setattr(memory, "_TRIM", trim)
    async with memory.giving_back_free_memory(seconds=0.001):
        await asyncio.wait_for(thrice.wait(), 10)
    assert set(calls) == {0}  # malloc_trim(0): keep no padding at the top of the heap
    assert not [t for t in asyncio.all_tasks() if t.get_name() == "memory-trim"]
