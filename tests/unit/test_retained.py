"""Events kept in state share their field-name sets: nothing they say or compare changes."""

from __future__ import annotations

import json

from contracts import encode, parse_event
from contracts.participant_events import MedicalHistoryRecorded
from contracts.retained import retained
from tests.builders import event
from tests.journey import HISTORY


def test_a_retained_event_serialises_and_compares_as_before() -> None:
    history = event("MedicalHistoryRecorded", HISTORY)
    wire = encode(history)
    twin = parse_event(wire)
    assert retained(twin) is twin
    assert encode(twin) == wire
    assert twin == history


def test_retained_events_of_one_type_share_one_set_and_a_copy_does_not_change_it() -> None:
    a, b = parse_event(encode(event("ClockTicked"))), parse_event(encode(event("ClockTicked")))
    retained(a)
    retained(b)
    assert a.__pydantic_fields_set__ is b.__pydantic_fields_set__
    shared = set(a.__pydantic_fields_set__)
    copied = a.model_copy(update={"site_id": "XX-01"})
    assert copied.site_id == "XX-01"
    assert a.__pydantic_fields_set__ == shared  # the copy changed its own set, not the shared one


def test_payload_and_source_are_shared_too() -> None:
    history = parse_event(encode(event("MedicalHistoryRecorded", HISTORY)))
    other = parse_event(encode(event("MedicalHistoryRecorded", HISTORY)))
    assert isinstance(history, MedicalHistoryRecorded)
    assert isinstance(other, MedicalHistoryRecorded)
    retained(history)
    retained(other)
    assert history.payload.__pydantic_fields_set__ is other.payload.__pydantic_fields_set__
    assert history.source.__pydantic_fields_set__ is other.source.__pydantic_fields_set__


def test_equal_sources_become_one_object() -> None:
    a, b = (
        parse_event(encode(event("ClockTicked"))),
        parse_event(encode(event("ClockTicked", at="2025-12-01T00:00:00+08:00"))),
    )
    assert a.source is not b.source
    retained(a)
    retained(b)
    assert a.source is b.source
    assert encode(b) == encode(parse_event(encode(b)))


def test_sources_that_differ_in_any_field_stay_apart() -> None:
    wire = json.loads(encode(event("ClockTicked")))
    kinds: list[dict[str, str | None]] = [
        {},
        {"system": "another-system"},
        {"actor": "someone-else"},
        {"actor": None},
        {"recorded_at_from": "receipt"},
    ]
    variants = [parse_event(json.dumps({**wire, "source": {**wire["source"], **kind}})) for kind in kinds]
    sources = [e.source for e in variants]
    assert len({(s.system, s.actor, s.recorded_at_from) for s in sources}) == len(kinds)
    for e in variants:
        retained(e)
    assert [e.source for e in variants] == sources  # each kept its own values
    assert len({id(e.source) for e in variants}) == len(kinds)
