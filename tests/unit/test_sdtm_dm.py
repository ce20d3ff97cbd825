"""SDTM DM from participant events: consent, age, arms (SDTMIG 3.4 ARMNRS), and a second study."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
from pathlib import Path
from typing import Any

import pyreadstat
import pytest

from contracts import DeviationRaised, ParticipantEvent, parse_event
from protocol.nct06904729 import PROTOCOL
from services.audit import sdtm
from services.audit.sdtm_cli import run
from services.audit.sdtm_dm import build_dm
from services.audit.sdtm_study import NCT06904729, SdtmStudy, sdtm_study
from services.audit.sdtm_subjects import study_day, subjects
from services.kafka import KafkaSettings
from tests.builders import EXAMPLE_EVENTS, STUDY, consent, event, registered
from tests.unit.test_sdtm_dv import replayed


def _at(day: int, hour: int = 10) -> str:
    return f"2025-11-{day:02d}T{hour:02d}:30:00+08:00"


def _journey(*steps: str, participant: str = "P-0001", birth: str = "2015-06-01") -> list[ParticipantEvent]:
    """Registration on the 1st, consent on the 2nd (guardian on the 3rd), then the steps from the 10th."""
    events = [
        registered(birth, participant=participant, at=_at(1)),
        consent("participant", participant=participant, at=_at(2)),
        consent("guardian", participant=participant, at=_at(3)),
    ]
    payloads: dict[str, dict[str, Any]] = {
        "EligibilityConfirmed": {"investigator": "inv", "eligible": True},
        "Ineligible": {"investigator": "inv", "eligible": False},
        "ParticipantEnrolled": {"arm": "high_dose"},
        "CarTInfused": {"total_cells": 3.5e7, "weight_kg": 35.0, "product_lot": "L1"},
    }
    for offset, step in enumerate(steps):
        kind = "EligibilityConfirmed" if step == "Ineligible" else step
        events.append(event(kind, payloads[step], participant=participant, at=_at(10 + offset)))
    return events


@pytest.mark.parametrize(
    ("steps", "arms"),
    [
        (
            ("EligibilityConfirmed", "ParticipantEnrolled", "CarTInfused"),
            ("HIGHDOSE", "High-dose CAR-T cells group", "HIGHDOSE", "High-dose CAR-T cells group", "", ""),
        ),
        (
            ("EligibilityConfirmed", "ParticipantEnrolled"),
            ("HIGHDOSE", "High-dose CAR-T cells group", "", "", "ASSIGNED, NOT TREATED", ""),
        ),
        (("Ineligible",), ("", "", "", "", "SCREEN FAILURE", "")),
        ((), ("", "", "", "", "NOT ASSIGNED", "")),
        (("CarTInfused",), ("", "", "", "", "UNPLANNED TREATMENT", "Treated without assignment to an arm")),
    ],
)
def test_arms_per_sdtmig_34(steps: tuple[str, ...], arms: tuple[str, ...]) -> None:
    (row,) = build_dm(_journey(*steps), PROTOCOL, NCT06904729)
    assert (row.armcd, row.arm, row.actarmcd, row.actarm, row.armnrs, row.actarmud) == arms


def test_reference_dates_and_study_days_of_a_treated_participant() -> None:
    (row,) = build_dm(_journey("EligibilityConfirmed", "ParticipantEnrolled", "CarTInfused"), PROTOCOL, NCT06904729)
    assert row.rfstdtc == row.rfxstdtc == row.rfxendtc == row.rfendtc == _at(12)  # the infusion
    assert row.dmdtc == _at(1)
    assert row.dmdy == -11  # the 1st is 11 days before the 12th: no day 0
    assert (row.country, row.siteid, row.subjid, row.usubjid) == ("CHN", "GZ-01", "P-0001", f"{STUDY}-GZ-01-P-0001")


def test_a_minor_consents_when_the_guardian_signs_too_an_adult_alone() -> None:
    (minor,) = build_dm(_journey(birth="2015-11-03"), PROTOCOL, NCT06904729)
    assert minor.rficdtc == _at(3)  # the guardian's signature completes it
    assert (minor.age, minor.ageu) == (10, "YEARS")  # 10 on the 3rd (11 only from 2026-11-03)
    (adult,) = build_dm(_journey(birth="2000-01-01"), PROTOCOL, NCT06904729)
    assert adult.rficdtc == _at(2)
    assert adult.age == 25


def test_a_participant_without_registration_or_consent() -> None:
    (row,) = build_dm([consent("guardian", at=_at(2))], PROTOCOL, NCT06904729)
    assert (row.sex, row.age, row.ageu, row.rficdtc, row.dmdtc, row.dmdy) == ("U", None, "", "", "", None)


@pytest.mark.parametrize(
    ("day", "reference", "expected"),
    [(_at(12), _at(12), 1), (_at(13, 1), _at(12, 23), 2), (_at(11), _at(12), -1), (_at(1), _at(12), -11)],
)
def test_study_day_has_no_day_zero(day: str, reference: str, expected: int) -> None:
    assert study_day(dt.datetime.fromisoformat(day), dt.datetime.fromisoformat(reference)) == expected


def test_birth_dates_stay_out_of_the_export(tmp_path: Path) -> None:
    """A curious reader of the files or the command's messages finds no birth date."""
    births = {"2015-09-14", "2011-02-27", "2016-12-01", "20150914", "20110227", "20161201"}
    err = io.StringIO()
    settings = KafkaSettings("127.0.0.1:1", STUDY, "unused")
    assert run(str(tmp_path / "dv.xpt"), None, "xpt", str(EXAMPLE_EVENTS), settings, stderr=err) == 0
    for path in tmp_path.iterdir():
        assert not any(b.encode() in path.read_bytes() for b in births), path.name
    assert not any(b in err.getvalue() for b in births)
    subject = next(iter(subjects([registered("2015-09-14")], NCT06904729).values()))
    assert "2015" not in repr(subject)
    dm, _ = pyreadstat.read_xport(str(tmp_path / "dm.xpt"))
    assert "BRTHDTC" not in dm.columns
    assert list(dm["AGE"]) == [10.0, 14.0, 9.0]


def test_a_second_study_without_a_dose_and_with_other_epochs_uses_the_same_code() -> None:
    """A study whose reference start is enrollment (no exposure events) and whose epochs differ."""
    other = SdtmStudy(
        study_id=STUDY,
        country="DEU",
        country_source="test",
        exposure_events=(),
        reference_start_events=("ParticipantEnrolled",),
        reference_start_rule="RFSTDTC is enrollment",
        epochs={
            **NCT06904729.epochs,
            **dict.fromkeys(("enrolled", "leukapheresis", "lymphodepletion"), "BLINDED TREATMENT"),
            "infused": "OPEN LABEL TREATMENT",
        },
    )
    events = _events_of_example()
    findings = [f for f in replayed(EXAMPLE_EVENTS) if isinstance(f, DeviationRaised)]
    rows = {r.usubjid[-4:]: r for r in sdtm.build(findings, events, PROTOCOL, study=other).dv}
    enrolled = {e.participant_id: e.occurred_at for e in events if e.event_type == "ParticipantEnrolled"}
    dose = next(f for f in findings if f.rule_id == "DOSE-01")
    assert rows["E-02"].dvstdy == study_day(dose.occurred_at, enrolled["E-02"])
    assert rows["E-02"].epoch == "BLINDED TREATMENT"
    dm = {r.subjid: r for r in build_dm(events, PROTOCOL, other)}
    assert dm["E-02"].rfstdtc == sdtm.iso(enrolled["E-02"])
    assert dm["E-02"].rfxstdtc == ""  # no exposure events: no treatment dates
    assert (dm["E-02"].actarmcd, dm["E-02"].armnrs) == (dm["E-02"].armcd, "")  # enrolled counts as treated
    assert {r.country for r in dm.values()} == {"DEU"}


def _events_of_example() -> list[ParticipantEvent]:
    return [parse_event(line) for line in EXAMPLE_EVENTS.read_bytes().splitlines() if line.strip()]


def test_a_study_without_sdtm_settings_is_refused_with_its_name() -> None:
    with pytest.raises(KeyError, match="no SDTM settings for study 'NCT00000000'"):
        sdtm_study("NCT00000000")
    assert dataclasses.is_dataclass(NCT06904729)
