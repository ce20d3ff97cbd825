"""One consumed record in, the records to publish out: findings, or the record dead-lettered.

Whatever the bytes, a record ends as processed or dead-lettered: input that breaks the contract,
a wrong key, another study's event, and an exception of the protocol core on a valid event are
all dead-lettered with a bounded reason. Nothing here logs an event's values.
"""

from __future__ import annotations

import hashlib
import typing
from collections import Counter
from collections.abc import MutableMapping
from dataclasses import dataclass

import structlog

from contracts import ContractError, FindingSuperseded, encode, parse_event
from events import process
from events.bounds import MAX_KEPT_FACTS, PARTICIPANT_STATE_FULL
from events.corrections import CORRECTION_UNMATCHED
from protocol import ParticipantState
from protocol.versions import Judge, history_of
from services.kafka import KafkaSettings
from services.participant_records import Record, check_message
from services.rules.weather import error_fields

log = structlog.get_logger("trialguard.rules")

MAX_DEAD_LETTER_BYTES = 1024 * 1024 - 16 * 1024
"""Key plus value of a dead-letter record at most: under the broker's default ``message.max.bytes``
(1 MiB) and the producer's ``max_request_size`` (1 MiB), with room for the headers. A record on
participant-events can be larger than that once decompressed; its dead-letter copy then keeps a
prefix and says so in headers (the original stays on participant-events, where the headers point)."""

ALERTED_PARTICIPANTS = 10_000
"""Participants whose full state was alerted on, remembered at most (then forgotten all at once)."""

MAX_HEADER_CHARS = 1000
"""A dead-letter reason or field header at most (a 500 KB field value never becomes a 500 KB header)."""


States = MutableMapping[str, ParticipantState]


class Overlay(MutableMapping[str, ParticipantState]):
    """``base`` as seen through the writes of a batch: reads look in ``changed`` first, writes land
    in ``changed`` only (``base`` is left as it is until the batch is committed). What
    ``collections.ChainMap`` does, with the lookup ``RecordHandler.handle`` makes per record cheap.
    """

    __slots__ = ("base", "changed")

    def __init__(self, base: MutableMapping[str, ParticipantState], changed: dict[str, ParticipantState]) -> None:
        self.base = base
        self.changed = changed

    def get(self, key: str, default: typing.Any = None) -> typing.Any:
        state = self.changed.get(key)
        return self.base.get(key, default) if state is None else state

    def __getitem__(self, key: str) -> ParticipantState:
        state = self.changed.get(key)
        return self.base[key] if state is None else state

    def __setitem__(self, key: str, state: ParticipantState) -> None:
        self.changed[key] = state

    def __delitem__(self, key: str) -> None:
        raise TypeError("participant state is never deleted")

    def __iter__(self) -> typing.Iterator[str]:
        yield from self.changed
        yield from (key for key in self.base if key not in self.changed)

    def __len__(self) -> int:
        return len(self.changed.keys() | self.base.keys())


@dataclass(frozen=True)
class Outgoing:
    """A record to produce inside the batch's transaction."""

    topic: str
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = ()
    rule_id: str | None = None


def _bounded(text: str) -> bytes:
    if len(text) > MAX_HEADER_CHARS:
        text = text[: MAX_HEADER_CHARS - 1] + "…"
    return text.encode("utf-8", "backslashreplace")


def dead_letter(record: Record, reason: str, field: str, topic: str) -> Outgoing:
    """The dead-letter record for rejected input: the original key and bytes (a prefix when they
    exceed ``MAX_DEAD_LETTER_BYTES``), the bounded reason and where it came from in headers."""
    key, value = record.key, record.value
    headers = [
        ("trialguard.error", _bounded(reason)),
        ("trialguard.error.field", _bounded(field)),
        ("trialguard.source.topic", record.topic.encode()),
        ("trialguard.source.partition", str(record.partition).encode()),
        ("trialguard.source.offset", str(record.offset).encode()),
    ]
    size = len(key or b"") + len(value or b"")
    if size > MAX_DEAD_LETTER_BYTES:
        whole = (key or b"") + b"\x00" + (value or b"")
        headers += [
            ("trialguard.original.bytes", str(size).encode()),
            ("trialguard.original.sha256", hashlib.sha256(whole).hexdigest().encode()),
        ]
        key = None if key is None else key[: MAX_DEAD_LETTER_BYTES // 2]
        value = None if value is None else value[: MAX_DEAD_LETTER_BYTES - len(key or b"")]
    return Outgoing(topic, key, value, tuple(headers))


class RecordHandler:
    """Parses, guards and processes one record of a study's participant-events topic.

    Args:
        settings: the broker and study (the topics dead letters and findings go to).
        protocol: the study's protocol history (each event is decided under the version in
            force at its ``occurred_at`` and site), or a single version in force throughout.
        max_kept_facts: the facts one participant's state keeps at most (``events.bounds``);
            the default but in tests (a replay decides with the default).
    """

    def __init__(self, settings: KafkaSettings, protocol: Judge, *, max_kept_facts: int = MAX_KEPT_FACTS) -> None:
        self.study_id = settings.study_id
        self.max_kept_facts = max_kept_facts
        self.alerted: set[str] = set()
        """Participants at their state bound alerted on already (one alert each, not one per event)."""
        self.topics = settings.topics
        self.history = history_of(protocol)
        self.unreadable_snapshots: set[int] = set()
        """Partitions a restored snapshot of which could not be decoded when its participant
        came (``RestoredStates``): their next take-over rebuilds them from the log."""

    def handle(
        self, record: Record, states: States, *, replaying: bool = False, outcomes: Counter[str] | None = None
    ) -> list[Outgoing]:
        """Process one consumed record against ``states`` (updated in place).

        ``replaying`` rebuilds state from records consumed before: it logs nothing, since what it
        returns was published then. ``outcomes`` counts the events of note (a correction that
        named no kept result, an event refused by the state bound), for the metrics.
        """
        where = {"partition": record.partition, "offset": record.offset}
        try:
            event = parse_event(record.value or b"")
            check_message(record, event, self.study_id)
        except ContractError as e:
            if not replaying:
                summary = e.summary()[:MAX_HEADER_CHARS]
                log.warning("dead_lettered", **where, event_type=e.event_type, violations=summary)
            return [dead_letter(record, str(e), e.field, self.topics.dead_letter)]
        except Exception as e:  # a parser bug must not stop the study: keep the input, go on
            if not replaying:
                log.error("parser_failed", **where, **error_fields(e))
            return [dead_letter(record, f"the contract parser raised {type(e).__name__}", "<message>",
                                self.topics.dead_letter)]  # fmt: skip
        pid = event.participant_id
        # Outside the guard below: a restored snapshot that cannot be decoded (SnapshotError) is
        # the state store's fault, not the event's; the batch fails and the partition is rebuilt.
        state = states.get(pid) or ParticipantState(pid)
        try:
            step = process(state, event, self.history, max_kept_facts=self.max_kept_facts)
        except ContractError as e:  # valid alone, not for this participant: another site, a unit, a full state
            if not replaying:
                summary = e.summary()[:MAX_HEADER_CHARS]
                log.warning("dead_lettered", **where, event_type=e.event_type, violations=summary)
                if e.violations[0].kind == PARTICIPANT_STATE_FULL:
                    self._alert_full(pid, where, outcomes)
            return [dead_letter(record, str(e), e.field, self.topics.dead_letter)]
        except Exception as e:  # the core raising on valid input is a bug: keep the input, go on
            if not replaying:
                log.error("core_failed", **where, event_id=str(event.event_id), event_type=event.event_type,
                          **error_fields(e))  # fmt: skip
            return [dead_letter(record, f"protocol core raised {type(e).__name__}", "<core>", self.topics.dead_letter)]
        states[pid] = step.state
        if step.unmatched and not replaying:
            log.warning(CORRECTION_UNMATCHED, **where, event_id=str(event.event_id), event_type=event.event_type,
                        participant_id=pid)  # fmt: skip
            if outcomes is not None:
                outcomes[CORRECTION_UNMATCHED] += 1
        if not replaying:
            for finding in step.findings:
                if isinstance(finding, FindingSuperseded):
                    log.info("finding_superseded", rule_id=finding.rule_id, participant_id=pid,
                             finding_id=str(finding.finding_id),
                             superseded_by_event_id=str(finding.superseded_by_event_id))  # fmt: skip
                    continue
                log.info("finding_raised", rule_id=finding.rule_id, participant_id=pid,
                         trigger_event_ids=[str(i) for i in finding.trigger_event_ids])  # fmt: skip
        # rule_id counts findings raised by rule (metrics): a FindingSuperseded raises none.
        return [
            Outgoing(
                self.topics.deviations,
                pid.encode(),
                encode(f),
                rule_id=None if isinstance(f, FindingSuperseded) else f.rule_id,
            )
            for f in step.findings
        ]

    def _alert_full(self, pid: str, where: dict[str, int], outcomes: Counter[str] | None) -> None:
        """The operations alert of a participant at its state bound: logged at error level once
        per participant (and owner), counted per event dead-lettered."""
        if outcomes is not None:
            outcomes[PARTICIPANT_STATE_FULL] += 1
        if pid in self.alerted:
            return
        if len(self.alerted) >= ALERTED_PARTICIPANTS:
            self.alerted.clear()
        self.alerted.add(pid)
        log.error(PARTICIPANT_STATE_FULL, **where, participant_id=pid, max_kept_facts=self.max_kept_facts,
                  action="its events are dead-lettered until the upstream is fixed")  # fmt: skip
