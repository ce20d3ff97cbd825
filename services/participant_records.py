"""A participant-events record as the rules service and the audit's recomputation both read it, and
the topic's own contract that both guard alike (key = participant id, one study per topic)."""

from __future__ import annotations

import typing

from contracts import ContractError, Violation


class Record(typing.Protocol):
    """The fields of a consumed Kafka record that the service reads."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...


def _shown(key: bytes) -> str:
    return repr(key[:40]) + ("…" if len(key) > 40 else "")


def check_message(record: Record, event: typing.Any, study_id: str) -> None:
    """Guard the topic's own contract: key = participant id, one study per topic.

    Raises:
        ContractError: the key is absent or differs from the participant id, or the event
            belongs to another study.
    """
    violations = []
    if record.key is None:
        violations.append(Violation("<key>", "missing: the message key must be the participant_id", "key_missing"))
    elif record.key != event.participant_id.encode():
        problem = f"{_shown(record.key)} differs from participant_id {event.participant_id!r}"
        violations.append(Violation("<key>", problem, "key_mismatch"))
    if event.study_id != study_id:
        violations.append(
            Violation(
                "study_id", f"{event.study_id!r} does not belong on the topic of study {study_id!r}", "study_mismatch"
            )
        )
    if violations:
        raise ContractError(violations, event_type=event.event_type, event_id=str(event.event_id))
