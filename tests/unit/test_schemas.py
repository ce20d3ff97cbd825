"""The checked-in JSON Schemas are exactly what the models generate."""

from __future__ import annotations

from contracts import schemas


def test_checked_in_schemas_match_the_models() -> None:
    generated = schemas.generate()
    on_disk = {p.name for p in schemas.SCHEMA_DIR.glob("*.json")}
    assert on_disk == set(generated), "run `trialguard contracts schemas` and commit contracts/schemas/"
    for name, schema in generated.items():
        assert (schemas.SCHEMA_DIR / name).read_text("utf-8") == schemas.render(schema), (
            f"contracts/schemas/{name} drifted from the models: run `trialguard contracts schemas`"
        )


def test_event_schema_discriminates_on_event_type() -> None:
    schema = schemas.generate()["participant-event.v1.json"]
    assert schema["discriminator"]["propertyName"] == "event_type"
    assert len(schema["oneOf"]) == 23  # 22 of the first release, and BilagAssessed


def test_checked_in_asyncapi_document_matches_the_code() -> None:
    from services import asyncapi

    assert asyncapi.DOCUMENT.read_text("utf-8") == asyncapi.render(), (
        "contracts/asyncapi.json drifted from the code: run `trialguard contracts schemas`"
    )


def test_asyncapi_document_describes_every_topic_with_its_contract() -> None:
    import json

    from services import asyncapi

    document = json.loads(asyncapi.render())
    addresses = {channel["address"] for channel in document["channels"].values()}
    assert addresses == {
        "trialguard.NCT06904729.participant-events",
        "trialguard.NCT06904729.deviations",
        "trialguard.NCT06904729.participant-state",
        "trialguard.NCT06904729.dead-letter",
        "trialguard.NCT06904729.finding-reviews",
        "trialguard.NCT06904729.access-log",
    }
    text = json.dumps(document)
    for model in ("ParticipantRegistered", "CarTInfused", "ClockTicked", "DeviationRaised", "SafetyAlertRaised",
                  "FindingReviewed", "FindingSuperseded", "AccessChanged", "LabResultCorrected",
                  "LabResultRetracted"):  # fmt: skip
        assert model in text
