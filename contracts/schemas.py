"""JSON Schema of contract v1, generated from the models (the models are the definition).

``python -m contracts.schemas`` rewrites ``contracts/schemas/``; a test fails when the checked-in
files drift from the models.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

from contracts.access import AccessChanged
from contracts.outputs import DeviationRaised, FindingSuperseded, SafetyAlertRaised
from contracts.participant_events import ParticipantEvent
from contracts.reviews import FindingReviewed

SCHEMA_DIR = Path(__file__).parent / "schemas"


def generate() -> dict[str, dict[str, Any]]:
    """Return every schema of contract v1, keyed by file name."""
    return {
        "participant-event.v1.json": _titled(TypeAdapter(ParticipantEvent).json_schema(), "ParticipantEvent"),
        "deviation-raised.v1.json": DeviationRaised.model_json_schema(),
        "safety-alert-raised.v1.json": SafetyAlertRaised.model_json_schema(),
        "finding-superseded.v1.json": FindingSuperseded.model_json_schema(),
        "finding-reviewed.v1.json": FindingReviewed.model_json_schema(),
        "access-changed.v1.json": AccessChanged.model_json_schema(),
    }


def render(schema: dict[str, Any]) -> str:
    """The checked-in text of one schema."""
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write(directory: Path = SCHEMA_DIR) -> list[Path]:
    """Write every schema into ``directory``; return the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, schema in generate().items():
        path = directory / name
        path.write_text(render(schema), encoding="utf-8")
        paths.append(path)
    return paths


def _titled(schema: dict[str, Any], title: str) -> dict[str, Any]:
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "title": title, **schema}


if __name__ == "__main__":
    for written in write():
        print(written)
