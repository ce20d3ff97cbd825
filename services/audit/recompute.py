"""Recompute findings from participant-events, as the live rules service decides them.

Inputs are records in log order: the topic read from offset 0 (read_committed, partition by
partition, each in offset order), an audit export file, or plain contract-v1 JSON lines. Each
record goes through the same pure step as the live service (``events.replay.Replay``, which runs
``events.process``), guarded as the live service guards it (``check_message``: the key is the
participant id, the event is this study's): what the live service dead-letters raises nothing
here either. Participants never share state across partitions, so reading partitions one after
another gives each participant's events in the order the live service saw them.

``as_of`` keeps what TrialGuard had received by a time: records whose Kafka record timestamp is
at most it. See the README (Audit) for why that, not the event's ``recorded_at``.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from contracts import Output, encode, parse_event
from events.replay import Replay
from protocol.registry import versions_for
from services.kafka import KafkaSettings, partition_ids, read_partition
from services.ledger.export_format import is_export, read_export
from services.participant_records import check_message

TIMESTAMP_TYPES = {0: "CreateTime", 1: "LogAppendTime"}
"""Kafka's record timestamp types; CreateTime is the producer's claim, LogAppendTime the broker's."""

PARTICIPANT_EVENTS_SUFFIX = ".participant-events"


@dataclass(frozen=True)
class InputRecord:
    """One record of participant-events, whatever it was read from.

    Attributes:
        partition: its partition (0 for a plain JSON-lines file).
        offset: its offset in the partition (the line number for a plain file).
        timestamp_ms: the Kafka record timestamp, None where there is none (a plain file).
        key: the record key; None for a plain file, where no key was ever given.
        value: the record's exact bytes.
        keyed: whether the record came with a key to check (a Kafka record or an export line).
        timestamp_type: CreateTime or LogAppendTime when the broker said; None otherwise.
        topic: the topic it was read from (empty for a plain file).
    """

    partition: int
    offset: int
    timestamp_ms: int | None
    key: bytes | None
    value: bytes
    keyed: bool = True
    timestamp_type: str | None = None
    topic: str = ""


@dataclass
class Recomputed:
    """What a recomputation read, skipped and raised.

    Attributes:
        source: the input's name, for messages.
        replay: the replay (states, processed, duplicates, findings by rule).
        findings: every output (findings, FindingSuperseded), in log order.
        records: records read.
        after_as_of: records received after ``as_of``, left out.
        rejected: records the live service dead-letters (contract, key or study, core error).
        late_event_ids: ids of events first received after ``as_of`` (a committed finding
            triggered by one of them was not yet due then).
        timestamp_types: how many records carried each timestamp type.
    """

    source: str
    replay: Replay
    findings: list[Output] = field(default_factory=list)
    records: int = 0
    after_as_of: int = 0
    rejected: int = 0
    late_event_ids: set[str] = field(default_factory=set)
    timestamp_types: Counter[str] = field(default_factory=Counter)

    _known: set[str] = field(default_factory=set)

    def add(self, record: InputRecord, as_of: int | None) -> None:
        """Take the next record of the log: left out when received after ``as_of`` (ms), else fed."""
        self.records += 1
        if record.timestamp_type is not None:
            self.timestamp_types[record.timestamp_type] += 1
        if as_of is not None and (record.timestamp_ms is None or record.timestamp_ms > as_of):
            self.after_as_of += 1
            if (event_id := _claimed_event_id(record.value)) is not None:
                self.late_event_ids.add(event_id)
            return
        try:
            event = parse_event(record.value)
            if record.keyed:
                check_message(record, event, self.replay.protocol.study_id)
            findings = self.replay.feed(event)
        except Exception:  # the live service dead-letters it: contract, key, study, or a core bug
            self.rejected += 1
            return
        self._known.add(str(event.event_id))
        self.findings.extend(findings)

    def finish(self) -> Recomputed:
        """Close the log: an event resent after as_of whose first copy came before was known by then."""
        self.late_event_ids -= self._known
        return self

    def finding_objects(self) -> list[dict[str, Any]]:
        """The findings as the JSON objects their wire encoding reads back to (what a topic holds)."""
        return [json.loads(encode(f)) for f in self.findings]


def new_replay(study_id: str) -> Replay:
    """The replay of a study's log: each event decided under the version in force at its date and site.

    The one place that picks what judges the log, as the live service's ``versions_for``.
    """
    return Replay(versions_for(study_id))


def parse_as_of(text: str) -> dt.datetime:
    """An ISO 8601 instant with an offset (``Z`` or ``+02:00``).

    Raises:
        ValueError: not ISO 8601, or no offset (a local time means a different instant on each
            machine: refused rather than guessed).
    """
    moment = dt.datetime.fromisoformat(text)
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{text!r} has no UTC offset (write e.g. 2025-06-01T12:00:00Z)")
    return moment


def as_of_ms(moment: dt.datetime) -> int:
    """The latest Kafka timestamp (ms since the epoch) at or before ``moment``."""
    return (moment - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(milliseconds=1)


def recompute(records: Iterable[InputRecord], replay: Replay, *, source: str, as_of: int | None = None) -> Recomputed:
    """Feed every record received by ``as_of`` (ms; None: all) to ``replay``, in the order given.

    Returns:
        The findings and the counts. A record the live service would dead-letter is counted in
        ``rejected`` and raises nothing.
    """
    out = Recomputed(source, replay)
    for record in records:
        out.add(record, as_of)
    return out.finish()


def _claimed_event_id(value: bytes) -> str | None:
    """The event id a record claims, normalised as ``str(UUID)``; None when unreadable."""
    try:
        claimed = json.loads(value).get("event_id")
        return str(uuid.UUID(str(claimed)))
    except (ValueError, AttributeError, TypeError):
        return None


def records_from_file(path: Path, study_id: str) -> Iterator[InputRecord]:
    """The participant-events records of an export file, or the lines of a plain JSON-lines file.

    An export may hold other topics (the deviations, the reviews): only records of a topic named
    ``….<study>.participant-events`` are input. Plain lines carry neither key nor timestamp.

    Raises:
        services.ledger.export_format.ExportFormatError: a malformed export line.
        OSError: the file cannot be read.
    """
    if is_export(path):
        suffix = f".{study_id}{PARTICIPANT_EVENTS_SUFFIX}"
        for r in read_export(path):
            if r.topic.endswith(suffix):
                yield InputRecord(r.partition, r.offset, r.timestamp_ms, r.key, r.value, topic=r.topic)
        return
    with path.open("rb") as f:
        for number, raw in enumerate(f, 1):
            line = raw.rstrip(b"\r\n")
            if line.strip():
                yield InputRecord(0, number, None, None, line, keyed=False)


async def records_from_topic(settings: KafkaSettings) -> AsyncIterator[InputRecord]:
    """participant-events from offset 0, read_committed, partition by partition in offset order."""
    topic = settings.topics.participant_events
    for partition in await partition_ids(settings, topic):
        async for r in read_partition(settings, topic, partition):
            yield InputRecord(
                r.partition,
                r.offset,
                r.timestamp,
                r.key,
                r.value or b"",
                timestamp_type=TIMESTAMP_TYPES.get(r.timestamp_type, str(r.timestamp_type)),
                topic=topic,
            )
