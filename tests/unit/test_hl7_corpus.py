"""Every public HL7 v2 message of tests/corpus/hl7v2 (kept byte for byte as published; see its
SOURCES.md) is read as a deployment would: the source registered with the lab's time zone, the
patient registered at the source's site, and each message either gets in with the expected
analyte, value, unit and times, or is refused for the reason the manifest names."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from contracts.participant_events import ScreeningLabResulted
from services.gateway.admission import admit
from services.gateway.fhir import SourceInfo
from services.gateway.hl7 import oru_to_events
from services.gateway.hl7_wire import decode, split
from services.gateway.registry import ParticipantRegistry
from services.gateway.sources import Source

CORPUS = Path(__file__).parent.parent / "corpus" / "hl7v2"
MANIFEST: dict[str, Any] = json.loads((CORPUS / "manifest.json").read_text())
STUDY, SITE = "NCT06904729", "SITE01"
RECEIVED = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)


def test_the_manifest_covers_every_file_of_the_corpus_and_nothing_else() -> None:
    assert sorted(MANIFEST) == sorted(p.name for p in CORPUS.glob("*.hl7"))
    sources = (CORPUS / "SOURCES.md").read_text()
    assert all(f"`{name}`" in sources for name in MANIFEST), "each file has its source and licence"


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_each_public_message_gets_in_or_is_refused_for_its_reason(name: str) -> None:
    expected = MANIFEST[name]
    source = Source(name="lab", site=SITE, time_zone=expected["time_zone"])
    messages = split(decode((CORPUS / name).read_bytes())).messages
    assert len(messages) == len(expected["messages"])
    for message, want in zip(messages, expected["messages"], strict=True):
        result = oru_to_events(
            message, SourceInfo(source.name, source.site), STUDY, time_zone=source.time_zone, received_at=RECEIVED
        )
        assert result.ack_code == want["ack"], result.errors
        if "refused" in want:
            first = result.errors[0]
            location = f"{first.segment}^{first.sequence}" + (f"^{first.field}" if first.field else "")
            assert (location, first.message) == (want["refused"]["location"], want["refused"]["reason"])
            assert result.events == ()
            continue
        assert len(result.not_used) == want["not_used"]
        registry = ParticipantRegistry({p["participant_id"]: SITE for p in want["published"]})
        admitted = admit(list(enumerate(result.events)), source, registry, STUDY)
        got = [
            {
                "type": e.event_type,
                "participant_id": e.participant_id,
                "loinc": e.payload.loinc,
                "value": e.payload.value,
                "unit": e.payload.unit,
                "occurred_at": e.occurred_at.isoformat(),
                "recorded_at": e.recorded_at.isoformat(),
            }
            for e in admitted
            if isinstance(e, ScreeningLabResulted)
        ]
        assert got == want["published"]
