"""A partition's participant states as restored from snapshots: each decoded when first asked for.

Taking over a partition reads every participant's latest snapshot. Decoding them all would cost
most of the take-over (about 0.1–0.3 ms a participant: a JSON document and the events it keeps,
validated again; 100,000 participants, tens of seconds), while the batches that follow touch a
few hundred of them. So a restore keeps the snapshots as read, and a participant's state is
decoded the first time an event of theirs comes in (or a snapshot round, a test or a comparison
asks for it).

A snapshot that does not look like one (``looks_like_a_snapshot``) is refused at restore, as an
eager decode would refuse it. One that looks right and still cannot be decoded raises
``SnapshotError`` when it is asked for: the transaction that needed it fails, and the partition is
re-opened rebuilt from the log (``RulesService``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, MutableMapping
from typing import Any

from events import snapshots
from protocol import ParticipantState

VERSION_KEY = b'"snapshot_version":'


def looks_like_a_snapshot(data: bytes) -> bool:
    """Whether ``data`` is shaped like a snapshot: a JSON object with a snapshot version.

    A cheap check (no parse) that refuses what another writer put on the state topic (empty
    values, other JSON, truncated bytes) at restore time rather than later.
    """
    return data.startswith(b"{") and data.rstrip().endswith(b"}") and VERSION_KEY in data


class RestoredStates(MutableMapping[str, ParticipantState]):
    """Participant states by id: decoded ones, and snapshots still undecoded.

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
        self._packed: dict[str, bytes] = dict(packed or {})
        for pid, data in self._packed.items():
            if not looks_like_a_snapshot(data):
                raise snapshots.SnapshotError(
                    f"the latest snapshot of {pid[:60]!r} is not a participant-state snapshot"
                )

    @property
    def undecoded(self) -> int:
        """How many participants' snapshots have not been decoded yet."""
        return len(self._packed)

    def __getitem__(self, pid: str) -> ParticipantState:
        state = self._states.get(pid)
        if state is not None:
            return state
        data = self._packed[pid]  # KeyError: no such participant
        try:
            state = snapshots.decode(data)
        except snapshots.SnapshotError:
            if self._on_unreadable is not None:
                self._on_unreadable()
            raise
        del self._packed[pid]
        self._states[pid] = state
        return state

    def get(self, pid: str, default: Any = None) -> Any:
        """The participant's state (decoded now if it was not yet), or ``default``."""
        state = self._states.get(pid)
        if state is not None:
            return state
        return self[pid] if pid in self._packed else default

    def __setitem__(self, pid: str, state: ParticipantState) -> None:
        self._packed.pop(pid, None)
        self._states[pid] = state

    def __delitem__(self, pid: str) -> None:
        if pid in self._states:
            del self._states[pid]
        else:
            del self._packed[pid]

    def __contains__(self, pid: object) -> bool:
        return pid in self._states or pid in self._packed

    def __iter__(self) -> Iterator[str]:
        yield from list(self._states)
        yield from list(self._packed)

    def __len__(self) -> int:
        return len(self._states) + len(self._packed)

    def __repr__(self) -> str:
        return f"RestoredStates({len(self._states)} decoded, {len(self._packed)} undecoded)"
