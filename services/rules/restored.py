"""A partition's participant states: decoded in memory while worked on, else at rest as snapshots.

Taking over a partition reads every participant's latest snapshot. Decoding them all would cost
most of the take-over (about 0.1–0.3 ms a participant: a JSON document and the events it keeps,
validated again; 100,000 participants, tens of seconds), while the batches that follow touch a
few hundred of them. So a restore keeps the snapshots as read, and a participant's state is
decoded the first time an event of theirs comes in (or a snapshot round, a test or a comparison
asks for it).

And back: once a snapshot round is committed, a participant whose state has not changed since
the round captured it is put at rest again (``rest_later``, ``rest``): its snapshot, which is that state, goes
to the partition's ``SnapshotStore`` on local disk and the decoded state is let go. So the
memory a partition holds follows the participants active between two rounds, not every
participant it has seen since it started (a trial's participants finish; a service runs for
months).

A snapshot that does not look like one (``looks_like_a_snapshot``) is refused at restore, as an
eager decode would refuse it. One that looks right and still cannot be decoded raises
``SnapshotError`` when it is asked for: the transaction that needed it fails, and the partition is
re-opened rebuilt from the log (``RulesService``).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping
from typing import Any

from events import snapshots
from protocol import ParticipantState
from services.rules.snapshot_store import SnapshotStore

VERSION_KEY = b'"snapshot_version":'


def looks_like_a_snapshot(data: bytes) -> bool:
    """Whether ``data`` is shaped like a snapshot: a JSON object with a snapshot version.

    A cheap check (no parse) that refuses what another writer put on the state topic (empty
    values, other JSON, truncated bytes) at restore time rather than later.
    """
    return data.startswith(b"{") and data.rstrip().endswith(b"}") and VERSION_KEY in data


class RestoredStates(MutableMapping[str, ParticipantState]):
    """Participant states by id: decoded ones, and snapshots at rest (``SnapshotStore``).

    Args:
        packed: each participant's latest snapshot, by participant id.
        on_unreadable: called when a snapshot cannot be decoded (before SnapshotError is raised):
            the service then rebuilds the partition from the log at its next take-over.

    Raises:
        SnapshotError: at construction, a value that does not look like a snapshot; when a
            participant is asked for, a snapshot that cannot be decoded.
    """

    def __init__(
        self, packed: Mapping[str, bytes] | None = None, on_unreadable: Callable[[], None] | None = None
    ) -> None:
        self._on_unreadable = on_unreadable
        self._states: dict[str, ParticipantState] = {}
        self._read: dict[str, bytes] = dict(packed or {})
        """Snapshots as restored, in memory until ``rest`` moves them to ``_disk`` (a take-over
        does not wait for a write of every participant)."""
        self._disk = SnapshotStore()
        self._resting: deque[tuple[str, ParticipantState, bytes]] = deque()
        for pid, data in self._read.items():
            if not looks_like_a_snapshot(data):
                raise snapshots.SnapshotError(
                    f"the latest snapshot of {pid[:60]!r} is not a participant-state snapshot"
                )

    @property
    def undecoded(self) -> int:
        """How many participants are at rest (their snapshot not decoded)."""
        return len(self._read) + len(self._disk)

    @property
    def decoded(self) -> int:
        """How many participants' states are decoded in memory."""
        return len(self._states)

    def rest_later(self, captured: Mapping[str, ParticipantState], written: Iterable[tuple[str, bytes]]) -> None:
        """Queue the participants of a committed snapshot round to be put at rest (``rest``).

        Args:
            captured: each participant's state as the round captured it.
            written: (participant id, the snapshot the round wrote of that state).
        """
        self._resting.extend((pid, captured[pid], data) for pid, data in written)

    def rest(self, most: int) -> int:
        """Put at rest up to ``most`` queued participants, those not changed since their round
        (the others are worked on: they stay decoded), and move up to ``most`` snapshots as
        restored to disk; a few at a time, so that a round or a take-over of thousands does not
        hold the event loop. Returns how many were put at rest."""
        queue = self._resting
        batch = [queue.popleft() for _ in range(min(most, len(queue)))]
        # By id: a participant in two queued rounds, unchanged in between, goes once.
        unchanged = {pid: data for pid, state, data in batch if self._states.get(pid) is state}
        read = self._read
        moved = [read.popitem() for _ in range(min(most, len(read)))]
        if unchanged or moved:
            # In key order: SQLite's B-tree takes it fastest.
            self._disk.add(sorted([*unchanged.items(), *moved]))
        for pid in unchanged:
            del self._states[pid]
        return len(unchanged)

    def _snapshot(self, pid: str) -> bytes | None:
        data = self._read.get(pid)
        return self._disk.get(pid) if data is None else data

    def _forget_snapshot(self, pid: str) -> bool:
        return self._read.pop(pid, None) is not None or self._disk.discard(pid)

    def __getitem__(self, pid: str) -> ParticipantState:
        state = self._states.get(pid)
        if state is not None:
            return state
        data = self._snapshot(pid)
        if data is None:
            raise KeyError(pid)
        try:
            state = snapshots.decode(data)
        except snapshots.SnapshotError:
            if self._on_unreadable is not None:
                self._on_unreadable()
            raise
        self._forget_snapshot(pid)
        self._states[pid] = state
        return state

    def get(self, pid: str, default: Any = None) -> Any:
        """The participant's state (decoded now if it was at rest), or ``default``."""
        state = self._states.get(pid)
        if state is not None:
            return state
        try:
            return self[pid]
        except KeyError:
            return default

    def __setitem__(self, pid: str, state: ParticipantState) -> None:
        if pid not in self._states:
            self._forget_snapshot(pid)
        self._states[pid] = state

    def __delitem__(self, pid: str) -> None:
        if pid in self._states:
            del self._states[pid]
        elif not self._forget_snapshot(pid):
            raise KeyError(pid)

    def __contains__(self, pid: object) -> bool:
        return pid in self._states or pid in self._read or pid in self._disk

    def __iter__(self) -> Iterator[str]:
        yield from list(self._states)
        yield from list(self._read)
        yield from self._disk

    def __len__(self) -> int:
        return len(self._states) + self.undecoded

    def __repr__(self) -> str:
        return f"RestoredStates({len(self._states)} decoded, {self.undecoded} at rest)"
