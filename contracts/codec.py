"""Bytes in, typed events out; typed events in, bytes out."""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic_core import from_json

from contracts import participant_events
from contracts.errors import ContractError, Violation
from contracts.limits import (
    EARLIEST_DATE,
    LATEST_DATE,
    MAX_EVENT_BYTES,
    MAX_FIELD_PART_CHARS,
    MAX_NESTING_DEPTH,
    excerpt,
    too_deep,
)
from contracts.participant_events import ParticipantEvent

_EVENTS: TypeAdapter[ParticipantEvent] = TypeAdapter(ParticipantEvent)
EVENT_TYPES: tuple[str, ...] = tuple(
    sorted(m.model_fields["event_type"].annotation.__args__[0] for m in ParticipantEvent.__origin__.__args__)  # type: ignore[attr-defined]
)
_WHOLE = "<message>"
_EXTRA = "<extra>"
_UNQUOTED = frozenset({"timezone_aware", "missing", "extra_forbidden"})
# Every field name of the contract: any other key in a field path was chosen by the input.
_FIELD_NAMES = frozenset(
    name
    for model in vars(participant_events).values()
    if isinstance(model, type) and issubclass(model, BaseModel)
    for name in model.model_fields
)


def parse_event(data: bytes | str, *, max_bytes: int | None = MAX_EVENT_BYTES) -> ParticipantEvent:
    """Turn one message into a typed participant event.

    Size and nesting are checked before anything parses the message, so no input costs more than
    ``MAX_EVENT_BYTES`` of work to reject, and no parser recurses deeper than ``MAX_NESTING_DEPTH``.

    Args:
        data: the message value, UTF-8 JSON.
        max_bytes: the size limit; None only to re-read an event accepted before, from the
            service's own storage (a snapshot writes omitted fields out and may escape non-ASCII,
            so the same event can take more bytes than the message it came in).

    Returns:
        The event, typed by its ``event_type``.

    Raises:
        ContractError: the message is too large or nested too deep, the bytes are not UTF-8 or
            not JSON, the type is unknown, a field is missing or has an impossible value, a
            timestamp has no offset or is out of range. Each violation names its field.
    """
    if isinstance(data, bytes):
        size = len(data)
    else:
        size = len(data) if data.isascii() else len(data.encode("utf-8", "surrogatepass"))
    if max_bytes is not None and size > max_bytes:
        problem = f"{size:,} bytes, more than the limit of {max_bytes:,}"
        raise ContractError([Violation(_WHOLE, problem, "too_large")])
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
    except UnicodeDecodeError as e:
        raise ContractError([Violation(_WHOLE, f"not UTF-8: invalid byte at position {e.start}", "not_utf8")]) from None
    if too_deep(text):
        problem = f"arrays and objects nested more than {MAX_NESTING_DEPTH} levels deep"
        raise ContractError([Violation(_WHOLE, problem, "too_deep")])
    try:
        return _EVENTS.validate_json(text)
    except ValidationError as e:
        raise _contract_error(e, text) from None


def encode(model: BaseModel) -> bytes:
    """Serialise an event or an output as compact UTF-8 JSON with a stable field order."""
    return model.model_dump_json().encode()


def _contract_error(error: ValidationError, text: str) -> ContractError:
    violations = [_violation(d) for d in error.errors(include_url=False, include_context=True)]
    event_type, event_id = _claimed_identity(text)
    return ContractError(violations, event_type=event_type, event_id=event_id)


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
        problem = f"unknown event type {excerpt(detail['ctx']['tag'])}; expected one of {expected}"
        return Violation("event_type", problem, kind)
    if loc and loc[0] in EVENT_TYPES:
        loc = loc[1:]  # the union's tag, already said by event_type
    field, log_field = _paths(loc, unknown_key=kind == "extra_forbidden")
    problem = detail["msg"]
    if kind in ("greater_than_equal", "less_than_equal") and isinstance(detail.get("input"), str):
        # Only dates and timestamps are strings with bounds (contracts.participant_events: Day, Instant).
        bound = str(detail["ctx"].get("ge", detail["ctx"].get("le")))
        kind, problem = "date_out_of_range", f"must be between {EARLIEST_DATE} and {LATEST_DATE}"
        problem += " (in UTC)" if "T" in bound else ""
    if kind == "timezone_aware":
        problem = "timestamp must carry a UTC offset (e.g. +08:00 or Z)"
    elif kind == "missing":
        problem = "missing"
    elif kind == "extra_forbidden":
        problem = "not a field of contract v1"
    if "input" in detail and not isinstance(detail["input"], (dict, list)) and kind not in _UNQUOTED:
        problem = f"{problem} (got {excerpt(detail['input'])})"
    return Violation(field, problem, kind, log_field)


def _paths(loc: list[int | str], *, unknown_key: bool) -> tuple[str, str]:
    """The dotted field path of a location, and the same path safe to log.

    A location holds field names, list indices and the labels pydantic gives the branches of a
    union (a lab value may be a number or a string: "float", "function-after[...]"), which are
    dropped. Only an unknown field (``unknown_key``) ends in a key the input chose: the first path
    cuts it to ``MAX_FIELD_PART_CHARS`` (and writes an empty key as ``""``), the second says
    ``<extra>`` instead.
    """
    key = (str(loc.pop())[:MAX_FIELD_PART_CHARS] or '""') if unknown_key and loc else None
    parts = [str(p) for p in loc if isinstance(p, int) or p in _FIELD_NAMES]
    if key is None:
        field = ".".join(parts) or _WHOLE
        return field, field
    return ".".join([*parts, key]), ".".join([*parts, _EXTRA])


def _claimed_identity(text: str) -> tuple[str | None, str | None]:
    """The event type and id the message claims, for error reports (best effort).

    Only a known event type and a well-formed UUID (normalised) are returned: both go into logs
    and headers, so nothing else of the input may. ``text`` is no deeper than the limit allows
    (checked before), and this parser is bounded in depth anyway.
    """
    try:
        claimed = from_json(text, allow_partial=True)
    except (ValueError, TypeError):  # TypeError: a str with a lone surrogate
        return None, None
    if not isinstance(claimed, dict):
        return None, None
    event_type = claimed.get("event_type")
    event_id = claimed.get("event_id")
    return (
        event_type if isinstance(event_type, str) and event_type in EVENT_TYPES else None,
        _uuid(event_id) if isinstance(event_id, str) else None,
    )


def _uuid(text: str) -> str | None:
    if len(text) > 45:  # the longest spelling uuid.UUID reads: "urn:uuid:" + 36
        return None
    try:
        return str(uuid.UUID(text))
    except ValueError:
        return None
