"""``trialguard replay`` reads an audit export as well as plain JSON lines (no broker)."""

from __future__ import annotations

import io
import json
from pathlib import Path

from services.ledger.chain import Chain
from services.ledger.export_format import ExportedRecord, record_line
from services.replay import run

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "three-participants.jsonl"


def test_an_export_replays_to_the_same_findings_as_its_events(tmp_path: Path) -> None:
    chain = Chain("trialguard.NCT06904729.participant-events", 0)
    lines = []
    for offset, value in enumerate(EXAMPLE.read_bytes().splitlines()):
        key = json.loads(value)["participant_id"].encode()
        head = chain.append(offset, 1_767_225_600_000 + offset, key, value)
        lines.append(
            record_line(ExportedRecord(chain.topic, 0, offset, 1_767_225_600_000 + offset, key, value, head.hex()))
        )
    export = tmp_path / "export.jsonl"
    export.write_text("\n".join(lines) + "\n")
    outputs = []
    for source in (str(EXAMPLE), str(export)):
        out, err = io.BytesIO(), io.StringIO()
        assert run(source, None, "NCT06904729", stdin=io.BytesIO(), stdout=out, stderr=err) == 0, err.getvalue()
        outputs.append(out.getvalue())
    assert outputs[0] == outputs[1]
    assert [json.loads(line)["rule_id"] for line in outputs[1].splitlines()] == ["CONSENT-01", "DOSE-01"]


def test_a_malformed_export_line_is_named(tmp_path: Path) -> None:
    export = tmp_path / "export.jsonl"
    export.write_text('{"kind": "record"}\n')
    err = io.StringIO()
    assert run(str(export), None, "NCT06904729", stdin=io.BytesIO(), stdout=io.BytesIO(), stderr=err) == 2
    assert f"{export}:1:" in err.getvalue()
