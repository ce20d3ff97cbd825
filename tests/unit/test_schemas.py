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
    assert len(schema["oneOf"]) == 20
