"""``trialguard protocol list``: every installed study with its versions, effective dates and
fingerprints; a package that fails to load is named with its reason, and the others still show."""

from __future__ import annotations

import json
from importlib import metadata
from pathlib import Path

import pytest

from protocol import registry
from protocol.fingerprint import fingerprint
from protocol.nct06904729 import PROTOCOL
from protocol.registry import ENTRY_POINT_GROUP, Registry, versions_for
from services.cli import main

AMENDED = """
import dataclasses, datetime as dt
from protocol.nct06904729 import PROTOCOL
from protocol.versions import ProtocolHistory, Version
V11 = dataclasses.replace(PROTOCOL, version="1.1")
HISTORY = ProtocolHistory([Version(PROTOCOL), Version(V11, dt.date(2026, 3, 1), (("GZ-02", dt.date(2026, 4, 1)),))])
"""


@pytest.fixture
def installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Registry:
    """Two protocol packages: NCT06904729 with an amendment, and one whose import raises."""
    (tmp_path / "amended_trial.py").write_text(AMENDED)
    (tmp_path / "broken_trial.py").write_text("raise ImportError('cannot import name SCHEDULE')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    found = Registry(
        lambda: [
            metadata.EntryPoint("NCT06904729", "amended_trial:HISTORY", ENTRY_POINT_GROUP),
            metadata.EntryPoint("NCT00000001", "broken_trial:HISTORY", ENTRY_POINT_GROUP),
        ]
    )
    monkeypatch.setattr(registry, "REGISTRY", found)
    return found


def test_the_shipped_packages_are_listed_with_their_fingerprints(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["protocol", "list"]) == 0
    out = capsys.readouterr().out
    second = versions_for("NCT06946485").versions[0].protocol
    assert out.splitlines() == [
        "NCT06904729  CAR-T cells for refractory/recurrent lupus nephritis in children  "
        "(protocol.nct06904729:HISTORY, trialguard)",
        f"  v1.0  effective from the beginning  fingerprint {fingerprint(PROTOCOL)}",
        "NCT06946485  Universal anti-CD70 CAR-T (CHT101) for relapsed refractory systemic lupus erythematosus  "
        "(protocol.nct06946485:HISTORY, trialguard)",
        f"  v1.0  effective from the beginning  fingerprint {fingerprint(second)}",
        "2 protocol package(s) loaded, 0 failed",
    ]


def test_a_broken_package_is_listed_with_its_reason_and_the_others_still_show(
    installed: Registry, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["protocol", "list"]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == (
        "NCT00000001  FAILED TO LOAD (broken_trial:HISTORY, unknown distribution): "
        "ImportError: cannot import name SCHEDULE"
    )
    assert lines[1].startswith("NCT06904729  CAR-T cells")
    assert lines[2] == f"  v1.0  effective from the beginning  fingerprint {fingerprint(PROTOCOL)}"
    assert lines[3].startswith("  v1.1  effective from 2026-03-01 (GZ-02 from 2026-04-01)  fingerprint ")
    assert lines[4] == "1 protocol package(s) loaded, 1 failed"
    # The broken package fails alone: the other study still replays, tests, checks.
    assert registry.versions_for("NCT06904729").version("1.1").version == "1.1"


def test_json_lists_the_same(installed: Registry, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["protocol", "list", "--format", "json"]) == 1
    studies = {s["study_id"]: s for s in json.loads(capsys.readouterr().out)["studies"]}
    assert studies["NCT00000001"]["error"] == "ImportError: cannot import name SCHEDULE"
    assert "versions" not in studies["NCT00000001"]
    versions = studies["NCT06904729"]["versions"]
    assert [(v["version"], v["effective"], v["at_sites"]) for v in versions] == [
        ("1.0", None, {}),
        ("1.1", "2026-03-01", {"GZ-02": "2026-04-01"}),
    ]
    assert versions[0]["fingerprint"] == fingerprint(PROTOCOL)


def test_a_command_for_the_broken_study_says_which_package_and_why(
    installed: Registry, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["protocol", "check", "--study", "NCT00000001"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == (
        "trialguard: protocol package for NCT00000001 (trialguard.protocols entry broken_trial:HISTORY) failed to "
        "load: ImportError: cannot import name SCHEDULE"
    )


def test_nothing_installed_is_a_failure(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(registry, "REGISTRY", Registry(list))
    assert main(["protocol", "list"]) == 1
    assert capsys.readouterr().out == "0 protocol package(s) loaded, 0 failed\n"
