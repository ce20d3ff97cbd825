"""The latest event ids a gateway has seen on participant-events, kept compactly.

The gateway remembers event ids so that a resent message is answered without being published
again. Kept as text in an ordered dict, 200,000 ids took about 34 MiB (a 36-character string, a
dict slot and a link each: ~175 bytes an id), and filling it was most of the gateway's memory
growth in a soak run. Here an id costs 16 bytes once its generation is sealed: ids are added to a
small set of 128-bit integers (the current generation); when it is full it is sealed, sorted, into
a slot of two arrays of unsigned 64-bit halves, searched by bisection, and the oldest sealed
generation's slot is written over once the bound is reached. The arrays are allocated whole at
the start (200,000 ids: 3 MiB), so that the gateway's memory does not climb for the first hour of
traffic while they fill: it is what it will be, whatever the traffic.

Membership is exact (the whole 128 bits are compared, no hashing that two ids could share), so a
new event is never taken for a resend.
"""

from __future__ import annotations

import uuid
from array import array
from bisect import bisect_left
from collections import deque

_LOW = (1 << 64) - 1
GENERATION = 10_000
"""Ids per generation: the unit in which old ids are forgotten (a set of this many ints is ~1 MiB)."""


class RecentIds:
    """The latest event ids added, at most ``kept`` of them and at least ``kept - generation``.

    Args:
        kept: how many ids are remembered at most.
        generation: ids sealed (and later forgotten) together; at most ``kept``.

    Raises:
        ValueError: a bound that is not positive.
    """

    def __init__(self, kept: int, generation: int = GENERATION) -> None:
        if kept < 1 or generation < 1:
            raise ValueError(f"kept ({kept}) and generation ({generation}) must be positive")
        self.kept = kept
        self.generation = min(generation, kept)
        self._current: set[int] = set()
        self._slots = kept // self.generation - 1
        """Sealed generations kept: with the current one, never more than ``kept`` ids."""
        self._highs = array("Q", bytes(8 * self._slots * self.generation))
        self._lows = array("Q", bytes(8 * self._slots * self.generation))
        """Each slot's high and low 64-bit halves, sorted by the whole id within the slot."""
        self._sealed: deque[int] = deque()
        """The slots in use, oldest first."""

    def __contains__(self, event_id: uuid.UUID) -> bool:
        whole = event_id.int
        if whole in self._current:
            return True
        high, low = whole >> 64, whole & _LOW
        highs, lows = self._highs, self._lows
        for slot in self._sealed:
            end = (slot + 1) * self.generation
            at = bisect_left(highs, high, slot * self.generation, end)
            while at < end and highs[at] == high:
                if lows[at] == low:
                    return True
                at += 1
        return False

    def add(self, event_id: uuid.UUID) -> None:
        """Remember ``event_id`` (forgetting the oldest generation when the bound is reached)."""
        self._current.add(event_id.int)
        if len(self._current) < self.generation:
            return
        ordered = sorted(self._current)
        self._current = set()
        if not self._slots:
            return  # kept == generation: the current generation is all there is
        slot = self._sealed.popleft() if len(self._sealed) == self._slots else len(self._sealed)
        at = slice(slot * self.generation, (slot + 1) * self.generation)
        self._highs[at] = array("Q", [n >> 64 for n in ordered])
        self._lows[at] = array("Q", [n & _LOW for n in ordered])
        self._sealed.append(slot)

    def __len__(self) -> int:
        return len(self._current) + len(self._sealed) * self.generation

    def __repr__(self) -> str:
        return f"RecentIds({len(self)} of at most {self.kept})"
