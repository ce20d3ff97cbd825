"""Snapshot rounds: how a partition's state is saved to the compacted state topic and comes back.

A partition's participants are snapshotted in *rounds*, not in every batch. A round is part of
one batch transaction (so its snapshots and the batch's offsets are committed together or not at
all) and writes the snapshot of every participant that changed since the partition's previous
round, each with the header ``trialguard.snapshot.offset`` = R, the input offset the round
reflects (the state after every record below R). A round is due about every ``snapshot_every``
offsets of the partition (up to a fifth more, by partition, so that partitions fed alike do not
write rounds together): it is then captured at the committed offset R and encoded off the hot
path, and the first transaction after that carries it (``prepared``), so that R can be below the
offset that transaction commits. At the first batch after a take-over that found no round to
start from, the round is written in the batch's own transaction (R = its committed offset), and
at a graceful release in a transaction of its own, carrying no offsets (R = the committed
offset).

**Why the latest snapshots are the state at the last round.** Invariant: once a transaction
carrying a round at R has committed, the latest snapshot of every participant in the state
partition equals the owner's state of that participant at R, and a participant without
snapshot has no state at R. A participant snapshotted in this round: its snapshot is its state at
R by construction. A participant whose latest snapshot is from an earlier round R' < R: had any
record in [R', R) changed it, it would have been in the set changed since the round before and
been written by a round in (R', R]; so its state at R is its state at R'. A participant without
snapshot: a change before R would have put it in a round. The set "changed since the last round"
lives in memory, grows only when a batch commits, and is forgotten only when the transaction that
wrote it commits (a prepared round holds its part of the set until then, and the states it
captured are those at its R: states are immutable values). Dropping it (a failed transaction)
drops the partition's whole state, and a take-over rebuilds it below.

**Progress that cannot expire.** Every transaction also writes, as its last record on the
state partition, the partition's *progress record* (key ``#progress``, no participant id has a
'#'): the input offset C it commits (value and header ``trialguard.progress.offset``) and the
round R in force (header ``trialguard.snapshot.offset``). Compaction keeps a key's latest value
for good, whereas the group's committed offsets expire (``offsets.retention.minutes``, 7 days
with the group empty, say after a kill -9 and a long outage) or are deleted or reset by hand. A
take-over restores to the progress record's C whenever there is one. ``group_offset_ignored`` is
logged when the group's offset is missing or ahead, ``group_offset_behind`` when it trails (as it
may after a kill: it is committed after each transaction, outside it: ``group_offsets``); the
group's offset is then set to C in a transaction of its own. The group's committed offset is
restored to only when there is no progress record (state written before them, or a state topic
lost).

**Restore = the latest snapshot of each participant + the tail.** R is read from the header of
the *last* record of the state partition (log order): rounds are written in offset order and
compaction always keeps a partition's last record, so R is the newest round's offset however
much was compacted. The state at the committed offset C is then the latest snapshots with the
participant-events records of [R, C) processed again by the same step (``replaying=True``: what
they published was committed then). Processing is deterministic, and the owners that processed
[R, C) started from the same state at R, so this is their state at C. The participants the tail
touches are exactly those changed since round R: they form the restored "changed since the last
round" set, which the next round writes.

The other cases:
  - *no snapshot at all* (a new partition, or the state topic deleted): the state is rebuilt from
    offset 0 of participant-events, the source of truth; ``snapshots_missing`` is logged when
    offsets were committed (the first batch after a take-over writes a round, so a partition
    with committed offsets always has one unless it lost it);
  - *a latest snapshot that cannot be read*: rebuilt from offset 0 too (``snapshots_unreadable``);
  - *a snapshot without the header* (written by a version that snapshotted every changed
    participant in every batch): all latest snapshots then reflect the committed offset, R = C;
  - *no progress record and no committed offset, or a round ahead of it* (state written before
    progress records, with the group's offsets expired or reset): as before rounds existed, the
    latest snapshots are trusted as they are, and the records from offset 0 go over them
    (consumed again with no committed offset, processed again up to C otherwise), so that the
    event ids they have seen change nothing (but the records after the round publish their
    findings again: what the progress record prevents); the next round is written at the first
    batch;
  - *a round with no changed participant* writes nothing: R stays at the previous round, whose
    snapshots still hold (nothing changed since), and the tail is longer;
  - *a rebalance or a restart*: the next owner's producer fences the previous one first, so it
    reads exactly the committed rounds, and the restored state and set are the previous owner's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping
from dataclasses import dataclass

import structlog

from events import snapshots
from protocol import ParticipantState
from services.kafka import KafkaSettings, read_partition
from services.rules.records import Outgoing, Overlay, RecordHandler
from services.rules.restored import RestoredStates

log = structlog.get_logger("trialguard.rules")

SNAPSHOT_OFFSET = "trialguard.snapshot.offset"
"""Header of a snapshot record: the input offset of its round (the state after every record below it)."""

PROGRESS_KEY = b"#progress"
"""Key of a state partition's progress record ('#' is in no participant id: contract Identifier)."""

PROGRESS_OFFSET = "trialguard.progress.offset"
"""Header of the progress record: the input offset its transaction committed (its value says it too)."""

DEFAULT_SNAPSHOT_EVERY = 5_000
"""Offsets of a partition between two snapshot rounds: a restore processes at most about this
many records again (well under a second), while a batch writes far fewer snapshots than one per
changed participant."""


@dataclass
class Snapshots:
    """What one state partition holds: each participant's latest snapshot, undecoded."""

    latest: dict[bytes, bytes]
    offset: int | None
    """The round offset of the partition's last record (None: no record, or one without the header)."""
    read: int
    """Snapshot records read to find them."""
    progress: int | None = None
    """The input offset the last progress record says was committed (None: none written, or unreadable)."""


async def read_snapshots(settings: KafkaSettings, partition: int) -> Snapshots:
    """Every committed record of one state partition: only each key's last value is kept (until
    the broker compacts the topic, it holds every snapshot ever written)."""
    latest: dict[bytes, bytes] = {}
    offset: int | None = None
    progress: int | None = None
    read = 0
    async for record in read_partition(settings, settings.topics.participant_state, partition):
        read += 1
        offset = _round_offset(record.headers)
        if record.key is None:
            continue
        if record.key == PROGRESS_KEY:
            progress = _progress(record.value)
        elif record.value is None:
            latest.pop(record.key, None)
        else:
            latest[record.key] = record.value
    return Snapshots(latest, offset, read, progress)


def _progress(value: bytes | None) -> int | None:
    try:
        return None if value is None else int(value)
    except ValueError:
        return None


def _round_offset(headers: Iterable[tuple[str, bytes]]) -> int | None:
    for name, value in headers:
        if name == SNAPSHOT_OFFSET:
            try:
                return int(value)
            except ValueError:
                return None
    return None


def decode_latest(found: Snapshots, on_unreadable: Callable[[], None] | None = None) -> RestoredStates:
    """The participants' states, each decoded when first asked for (``RestoredStates``).

    Raises:
        SnapshotError: a latest snapshot is not shaped like one (at once); one that cannot be
            decoded raises it when asked for, after ``on_unreadable``.
    """
    return RestoredStates({key.decode(): value for key, value in found.latest.items()}, on_unreadable)


async def restore_snapshots(settings: KafkaSettings, partition: int) -> tuple[RestoredStates, int]:
    """The latest committed snapshot of every participant of one partition (their state at the
    newest round, decoded when first asked for), and how many snapshot records were read.

    Raises:
        SnapshotError: a participant's latest snapshot is not shaped like one.
    """
    found = await read_snapshots(settings, partition)
    return decode_latest(found), found.read


async def replay(
    settings: KafkaSettings,
    handler: RecordHandler,
    partition: int,
    states: MutableMapping[str, ParticipantState],
    start: int,
    upto: int,
) -> tuple[set[str], int]:
    """Process participant-events records [start, upto) of one partition again onto ``states``
    (in place), with the same step: the participants they touched, and the records read."""
    touched: dict[str, ParticipantState] = {}
    read = 0
    if start < upto:
        view = Overlay(states, touched)  # writes land in `touched`
        topic = settings.topics.participant_events
        async for record in read_partition(settings, topic, partition, start=start):
            if record.offset >= upto:
                break
            read += 1
            handler.handle(record, view, replaying=True)
        states.update(touched)
    return set(touched), read


async def rebuild_from_log(
    settings: KafkaSettings, handler: RecordHandler, partition: int, upto: int
) -> tuple[dict[str, ParticipantState], int]:
    """The state of one partition's participants rebuilt by re-reading participant-events from
    offset 0 up to ``upto`` with the same step (what snapshots save), and the events read."""
    states: dict[str, ParticipantState] = {}
    _, read = await replay(settings, handler, partition, states, 0, upto)
    return states, read


@dataclass
class Restored:
    """A partition's state as of its committed offset, and what it took."""

    committed: int | None
    """The input offset restored to: the progress record's, else the group's committed offset."""
    states: RestoredStates
    """As restored: from snapshots, decoded when first asked for (``RestoredStates``)."""
    changed: set[str]
    """Participants whose state differs from their latest snapshot: the next round writes them."""
    round_offset: int | None
    """The offset of the round restored from (None: none to count from, the next batch writes one)."""
    snapshots_read: int
    events_read: int


async def restore(settings: KafkaSettings, handler: RecordHandler, partition: int, group: int | None) -> Restored:
    """A partition's state as of its committed offset: the latest snapshots plus the records
    after their round processed again; rebuilt from offset 0 of the log when no snapshot is there
    (the state topic was deleted) or one cannot be read (see the module docstring).

    The committed offset is the partition's progress record's when there is one (it cannot
    expire: the module docstring), else ``group``, the consumer group's committed offset.
    """
    found = await read_snapshots(settings, partition)
    committed = _committed(partition, found.progress, group)
    upto = committed or 0
    where = {"partition": partition, "committed_offset": committed}
    states = RestoredStates()
    start = 0
    round_offset: int | None = None
    try:
        if partition in handler.unreadable_snapshots:
            # A snapshot restored before could not be decoded when its participant came: rebuild.
            raise snapshots.SnapshotError("a snapshot of this partition could not be decoded")
        states = decode_latest(found, lambda: handler.unreadable_snapshots.add(partition))
    except snapshots.SnapshotError as e:
        log.warning("snapshots_unreadable", **where, error=type(e).__name__)
        handler.unreadable_snapshots.discard(partition)
        found = Snapshots({}, None, found.read, found.progress)
        states = RestoredStates()
    else:
        if found.read == 0:
            if upto:
                log.warning("snapshots_missing", **where)
        elif committed is not None:
            offset = upto if found.offset is None else found.offset
            if offset <= upto:
                start = round_offset = offset
            else:
                log.warning("snapshots_ahead", **where, snapshot_offset=offset)
    changed, read = await replay(settings, handler, partition, states, start, upto)
    return Restored(committed, states, changed, round_offset, found.read, read)


def _committed(partition: int, progress: int | None, group: int | None) -> int | None:
    """Where the partition's processing got to: the progress record, else the group's offset."""
    if progress is None:
        return group
    if group is not None and group < progress:  # the group's offset trails (``group_offsets``): a kill
        log.info("group_offset_behind", partition=partition, group_offset=group, progress_offset=progress)
    elif group != progress:  # expired (7 days with the group empty), deleted or reset by hand
        log.warning("group_offset_ignored", partition=partition, group_offset=group, progress_offset=progress)
    return progress


def progress_record(topic: str, committed: int, round_offset: int) -> Outgoing:
    """The progress record of a transaction that commits input offset ``committed``, the last
    round being at ``round_offset``: the last record it writes to the state partition."""
    headers = ((SNAPSHOT_OFFSET, str(round_offset).encode()), (PROGRESS_OFFSET, str(committed).encode()))
    return Outgoing(topic, PROGRESS_KEY, str(committed).encode(), headers)


def snapshot_records(
    topic: str, states: Mapping[str, ParticipantState], pids: Iterable[str], offset: int
) -> Iterator[Outgoing]:
    """The round's snapshot records of ``pids`` (state as in ``states``) at input ``offset``."""
    headers = ((SNAPSHOT_OFFSET, str(offset).encode()),)
    for pid in pids:
        yield Outgoing(topic, pid.encode(), snapshots.encode(states[pid]), headers)
