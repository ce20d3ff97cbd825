"""A snapshot round prepared off the hot path.

A round used to be encoded and sent inside the batch transaction that reached it: every
participant changed since the previous round, encoded at once (a few hundred milliseconds for a
few thousand participants), with the event loop, and so every partition's findings, waiting.

Now, when a round is due at committed offset R, the states of the participants changed since the
previous round are *captured* as they are at R (a dict of references: a participant's state is an
immutable value, each event makes a new one, see ``events.fold``), and a task encodes them a
slice at a time, letting the loop run between slices. The first batch transaction after the task
is done carries the encoded round, with its progress record naming round R (``rounds``): the
snapshots are the state at R whatever was processed since, so the invariant of ``rounds`` holds
as before. Until then the progress records go on naming the previous round, whose snapshots still
hold; a crash in between restores from it, with a longer tail. The participants changed after R
gather in a new "changed" set for the next round; a graceful release writes both sets at once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from protocol import ParticipantState
from services.rules.records import Outgoing
from services.rules.rounds import snapshot_records

SLICE_SECONDS = 0.004
"""Encoding a prepared round yields to the event loop at least this often."""


@dataclass
class PreparedRound:
    """A snapshot round at input ``offset`` being encoded (``task``), for the next transaction."""

    offset: int
    captured: Mapping[str, ParticipantState]
    """Each participant's state at ``offset``."""
    task: asyncio.Task[list[Outgoing]]

    @property
    def pids(self) -> frozenset[str]:
        return frozenset(self.captured)

    def written(self) -> Iterator[tuple[str, bytes]]:
        """(participant id, snapshot) of each record the encoded round writes."""
        for o in self.task.result():
            if o.key is not None and o.value is not None:
                yield o.key.decode(), o.value

    @property
    def ready(self) -> bool:
        return self.task.done()

    def cancel(self) -> None:
        self.task.cancel()


def prepare_round(
    topic: str, states: Mapping[str, ParticipantState], pids: Iterable[str], offset: int
) -> PreparedRound:
    """Capture the state of ``pids`` at ``offset`` and start encoding their snapshot records."""
    captured = {pid: states[pid] for pid in sorted(pids)}
    return PreparedRound(offset, captured, asyncio.create_task(_encode(topic, captured, offset)))


async def _encode(topic: str, captured: dict[str, ParticipantState], offset: int) -> list[Outgoing]:
    out: list[Outgoing] = []
    deadline = time.perf_counter() + SLICE_SECONDS
    for record in snapshot_records(topic, captured, captured, offset):
        out.append(record)
        if time.perf_counter() >= deadline:
            await asyncio.sleep(0)
            deadline = time.perf_counter() + SLICE_SECONDS
    return out
