"""``trialguard audit verify`` says which format it checked, and what a refusal is about."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from services.cli import main
from tests.tampering import FORMAT1_FIXTURE, KEY, data, drop_partition, scenario


@pytest.fixture
def public_key(tmp_path: Path) -> Path:
    path = tmp_path / "audit.key.pub"
    path.write_bytes(
        KEY.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return path


def test_a_format_1_export_verifies_and_says_completeness_is_not_signed(
    public_key: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["audit", "verify", str(FORMAT1_FIXTURE), "--public-key", str(public_key)]) == 0
    assert "format 1, 19 records in 4 partitions" in capsys.readouterr().out


def test_a_dropped_partition_is_named(public_key: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    export = tmp_path / "export.jsonl"
    export.write_bytes(data(drop_partition(1, manifest_too=False)(list(scenario().lines))))

    assert main(["audit", "verify", str(export), "--public-key", str(public_key)]) == 1

    assert (
        "partition 1: missing from the file (the manifest signs 17 records, offsets 0 to 20)" in capsys.readouterr().err
    )


def test_an_as_of_point_needs_the_broker(public_key: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    export = tmp_path / "export.jsonl"
    export.write_bytes(data(scenario().lines))
    argv = ["audit", "verify", str(export), "--public-key", str(public_key), "--as-of-checkpoint", "4"]
    assert main(argv) == 2
    assert "--as-of-checkpoint needs --bootstrap-servers" in capsys.readouterr().err
