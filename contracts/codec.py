"""Bytes in, typed events out; typed events in, bytes out."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from contracts.errors import ContractError, Violation
from contracts.participant_events import ParticipantEvent

_EVENTS: TypeAdapter[ParticipantEvent] = TypeAdapter(ParticipantEvent)
EVENT_TYPES: tuple[str, ...] = tuple(
    sorted(m.model_fields["event_type"].annotation.__args__[0] for m in ParticipantEvent.__origin__.__args__)  # type: ignore[attr-defined]
)
_WHOLE = "<message>"


def parse_event(data: bytes | str) -> ParticipantEvent:
    """Turn one message into a typed participant event.

    Args:
        data: the message value, UTF-8 JSON.

    Returns:
        The event, typed by its ``event_type``.

    Raises:
        ContractError: the bytes are not UTF-8 or not JSON, the type is unknown, a field is
            missing or has an impossible value, a timestamp has no offset. Each violation names
            its field.
    """
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ContractError(
                [Violation(_WHOLE, f"not UTF-8: invalid byte at position {e.start}", "not_utf8")]
            ) from None
    try:
        return _EVENTS.validate_json(data)
    except ValidationError as e:
        raise _contract_error(e, data) from None


def encode(model: BaseModel) -> bytes:
    """Serialise an event or an output as compact UTF-8 JSON with a stable field order."""
    return model.model_dump_json().encode()


def _contract_error(error: ValidationError, text: str) -> ContractError:
    violations = [_violation(d) for d in error.errors(include_url=False)]
    claimed = _claimed_identity(text)
    return ContractError(violations, event_type=claimed.get("event_type"), event_id=claimed.get("event_id"))


def _violation(detail: Any) -> Violation:
    kind, loc = detail["type"], list(detail["loc"])
    if kind == "json_invalid":
        return Violation(_WHOLE, f"not JSON: {detail['ctx']['error']}", kind)
    if kind == "model_attributes_type" and not loc:
        return Violation(_WHOLE, "not a JSON object", kind)
    if kind == "union_tag_not_found":
        return Violation("event_type", "missing", "missing")
    if kind == "union_tag_invalid":
        expected = ", ".join(EVENT_TYPES)
        return Violation("event_type", f"unknown event type {detail['ctx']['tag']!r}; expected one of {expected}", kind)
    if loc and loc[0] in EVENT_TYPES:
        loc = loc[1:]  # the union's tag, already said by event_type
    # A value that may be a number or a string reports one branch per type: keep the field path.
    loc = [p for p in loc if p not in ("float", "str", "constrained-str", "function-after[...]")]
    field = ".".join(str(p) for p in loc) or _WHOLE
    problem = detail["msg"]
    if kind == "timezone_aware":
        problem = "timestamp must carry a UTC offset (e.g. +08:00 or Z)"
    elif kind == "missing":
        problem = "missing"
    elif kind == "extra_forbidden":
        problem = "not a field of contract v1"
    elif "input" in detail and not isinstance(detail["input"], (dict, list)):
        problem = f"{problem} (got {detail['input']!r})"
    return Violation(field, problem, kind)


def _claimed_identity(text: str) -> dict[str, str]:
    """The event type and id the message claims, for error reports (best effort)."""
    try:
        obj = json.loads(text)
    except ValueError:
        return {}
    if not isinstance(obj, dict):
        return {}
    return {k: v for k in ("event_type", "event_id") if isinstance(v := obj.get(k), str)}
