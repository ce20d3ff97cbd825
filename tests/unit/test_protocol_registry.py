"""Protocol packages are found through the ``trialguard.protocols`` entry points; a package that
does not load, or that tries to pass for another study, fails alone and says why."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

import pytest

from protocol import registry
from protocol.nct06904729 import HISTORY, PROTOCOL
from protocol.registry import ENTRY_POINT_GROUP, ProtocolLoadError, Registry, UnknownStudyError

SHIPPED = metadata.EntryPoint("NCT06904729", "protocol.nct06904729:HISTORY", ENTRY_POINT_GROUP)


def _entry(study: str, target: str) -> metadata.EntryPoint:
    return metadata.EntryPoint(study, target, ENTRY_POINT_GROUP)


@pytest.fixture
def trial_modules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder on sys.path for the fake protocol packages a test writes."""
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def test_the_installed_distribution_registers_nct06904729_by_entry_point() -> None:
    entries = {e.name: e.value for e in metadata.entry_points(group=ENTRY_POINT_GROUP)}
    assert entries["NCT06904729"] == "protocol.nct06904729:HISTORY"
    assert registry.versions_for("NCT06904729") is HISTORY
    assert registry.protocol_for("NCT06904729") is PROTOCOL
    assert "NCT06904729" in registry.studies()


def test_a_package_that_raises_on_import_fails_alone_and_names_itself(trial_modules: Path) -> None:
    (trial_modules / "trial_that_raises.py").write_text("raise RuntimeError('visit table missing')\n")
    found = Registry(lambda: [_entry("NCT00000001", "trial_that_raises:HISTORY"), SHIPPED])

    assert found.studies() == ["NCT00000001", "NCT06904729"]  # listing imports no package
    with pytest.raises(ProtocolLoadError) as raised:
        found.versions_for("NCT00000001")
    message = str(raised.value)
    assert "NCT00000001" in message
    assert "trial_that_raises:HISTORY" in message
    assert "RuntimeError: visit table missing" in message
    assert found.versions_for("NCT06904729") is HISTORY
    assert [(i.study_id, i.error is None) for i in found.all()] == [("NCT00000001", False), ("NCT06904729", True)]


def test_a_missing_module_is_a_load_error_not_a_crash() -> None:
    found = Registry(lambda: [_entry("NCT00000002", "no_such_trial_package:HISTORY")])
    with pytest.raises(ProtocolLoadError, match=r"no_such_trial_package:HISTORY.*ModuleNotFoundError"):
        found.versions_for("NCT00000002")


def test_an_entry_that_is_no_protocol_history_is_refused(trial_modules: Path) -> None:
    (trial_modules / "trial_of_rules.py").write_text("HISTORY = ['DOSE-01']\n")
    found = Registry(lambda: [_entry("NCT00000003", "trial_of_rules:HISTORY")])
    with pytest.raises(ProtocolLoadError, match="it is a list, not a ProtocolHistory"):
        found.versions_for("NCT00000003")


def test_a_package_cannot_pass_another_studys_rules_off_as_its_own() -> None:
    """A package naming its entry after one study but giving another's history would judge the
    first study's events by rules written for the second."""
    found = Registry(lambda: [_entry("NCT00000004", "protocol.nct06904729:HISTORY")])
    with pytest.raises(ProtocolLoadError, match="its history is of study 'NCT06904729', not 'NCT00000004'"):
        found.versions_for("NCT00000004")


def test_a_second_package_registering_the_same_study_does_not_replace_its_rules(trial_modules: Path) -> None:
    (trial_modules / "lenient_copy.py").write_text("from protocol.nct06904729 import HISTORY\n")
    found = Registry(lambda: [SHIPPED, _entry("NCT06904729", "lenient_copy:HISTORY")])
    twice = r"registered twice, by protocol\.nct06904729:HISTORY .* and lenient_copy:HISTORY"
    with pytest.raises(ProtocolLoadError, match=twice):
        found.versions_for("NCT06904729")


def test_an_unknown_study_names_the_installed_ones() -> None:
    with pytest.raises(UnknownStudyError) as raised:
        registry.versions_for("NCT99999999")
    assert str(raised.value) == "no protocol for study 'NCT99999999'; known: NCT06904729, NCT06946485"
    with pytest.raises(UnknownStudyError, match="known: none installed"):
        Registry(list).versions_for("NCT06904729")


def test_entry_points_are_read_once_and_each_study_loaded_once() -> None:
    reads: list[int] = []

    def discover() -> list[metadata.EntryPoint]:
        reads.append(1)
        return [SHIPPED]

    found = Registry(discover)
    assert found.versions_for("NCT06904729") is found.versions_for("NCT06904729") is HISTORY
    assert found.installed("NCT06904729") is found.all()[0]
    assert len(reads) == 1
