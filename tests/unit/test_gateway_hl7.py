"""HL7 v2.5.1 ORU^R01 → ScreeningLabResulted, and the ACK: several OBX, held, refused, idempotent."""

from __future__ import annotations

import datetime as dt

import pytest
from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.parser import parse_message

from contracts.participant_events import LabResultCorrected, LabResultRetracted, ScreeningLabResulted
from services.gateway.fhir import SourceInfo
from services.gateway.hl7 import Hl7Result, oru_to_events, sending_application
from services.gateway.hl7_ack import Hl7Error, ack

SOURCE = SourceInfo(name="lab-site01", site="SITE01")
MSH = "MSH|^~\\&|LABSYS|SITE01LAB|TRIALGUARD|NCT06904729|20250301103000+0800||ORU^R01^ORU_R01|MSG00001|P|2.5.1"
PID = "PID|1||MRN9^^^HOSP^MR~P-001^^^NCT06904729^RI"
OBR = "OBR|1|ORD1|FIL123|SCREEN^Screening panel^L|||20250301080000+0800"
OBX = [
    "OBX|1|NM|751-8^Neutrophils^LN||1.8|10*3/uL^10*3/uL^UCUM|1.5-7.5||||F",
    "OBX|2|ST|5196-1^HBsAg^LN||Negative||||||F",
    "OBX|3|SN|5048-4^ANA^LN||^1^:^160||||||F",
    "OBX|4|NM|1742-6^ALT^LN||32|U/L^^UCUM|<40||||F|||20250301081500+0800",
    "OBX|5|CE|24110-9^Syphilis^LN||10828004^Positive^SCT||||||F",
]


def message(*obx: str, msh: str = MSH, pid: str = PID, obr: str = OBR) -> str:
    return "\r".join([msh, pid, obr, *(obx or OBX)])


def run(text: str) -> Hl7Result:
    return oru_to_events(text, SOURCE, "NCT06904729", assigning_authority="NCT06904729")


def test_an_oru_with_several_obx_maps_each_result() -> None:
    result = oru_to_events(message(), SOURCE, "NCT06904729", assigning_authority="NCT06904729")
    assert result.errors == ()
    assert result.ack_code == "AA"
    results = [e for e in result.events if isinstance(e, ScreeningLabResulted)]
    assert len(results) == len(result.events)
    got = [(e.payload.loinc, e.payload.value, e.payload.unit, e.payload.uln, e.payload.lln) for e in results]
    assert got == [
        ("751-8", 1.8, "10*3/uL", 7.5, 1.5),
        ("5196-1", "negative", None, None, None),
        ("5048-4", "1:160", None, None, None),
        ("1742-6", 32.0, "U/L", 40.0, None),
        ("24110-9", "positive", None, None, None),
    ]
    first, *_, alt, _ = result.events
    assert (first.participant_id, first.site_id, first.source.system) == ("P-001", "SITE01", "lab-site01")
    assert first.occurred_at.isoformat() == "2025-03-01T08:00:00+08:00"  # OBR-7: no OBX-14
    assert alt.occurred_at.isoformat() == "2025-03-01T08:15:00+08:00"  # OBX-14
    assert first.recorded_at.isoformat() == "2025-03-01T10:30:00+08:00"  # MSH-7


def test_without_an_assigning_authority_the_first_pid3_identifier_is_taken() -> None:
    result = oru_to_events(message(pid="PID|1||P-002^^^NCT06904729^RI~MRN9^^^HOSP^MR"), SOURCE, "NCT06904729")
    assert {e.participant_id for e in result.events} == {"P-002"}


def test_lf_separated_segments_are_read_too() -> None:
    assert len(oru_to_events(message().replace("\r", "\n"), SOURCE, "NCT06904729").events) == 5


def test_the_same_message_gives_the_same_ids_and_another_source_others() -> None:
    first = oru_to_events(message(), SOURCE, "NCT06904729")
    again = oru_to_events(message(msh=MSH.replace("MSG00001", "MSG00002")), SOURCE, "NCT06904729")
    assert [e.event_id for e in first.events] == [e.event_id for e in again.events]  # keyed on OBR-3
    assert len({e.event_id for e in first.events}) == 5
    other = oru_to_events(message(), SourceInfo("lab-site02", "SITE02"), "NCT06904729")
    assert {e.event_id for e in other.events}.isdisjoint(e.event_id for e in first.events)


def test_a_preliminary_result_is_held_and_acknowledged_with_a_warning() -> None:
    held = "OBX|6|NM|718-7^Hemoglobin^LN||11.2|g/dL^^UCUM|11.5-15.5||||P"
    result = run(message(*OBX, held))
    assert len(result.events) == 5
    assert result.ack_code == "AA"
    assert [(h.segment, h.sequence, h.field, h.severity) for h in result.held] == [("OBX", 6, 11, "W")]
    text = result.ack(message(*OBX, held))
    assert "MSA|AA|MSG00001" in text.split("\r")
    assert "ERR||OBX^6^11|0^Message accepted^HL70357|W||||result status P: held, not published" in text.split("\r")


@pytest.mark.parametrize(
    ("obx", "location", "words"),
    [
        ("OBX|1|NM|751-8^Neutrophils^LN||1.8|10*3/L^^UCUM|||||F", "OBX^1^6", "'10*3/L' is not known"),
        ("OBX|1|NM|751-8^Neutrophils^LN||many|10*3/uL|||||F", "OBX^1^5", "not a number"),
        ("OBX|1|ST|5196-1^HBsAg^LN||weakly reactive||||||F", "OBX^1^5", "not positive"),
        ("OBX|1|ST|1742-6^ALT^LN||positive||||||F", "OBX^1^5", "not a result for alt"),
        ("OBX|1|NM|751-8^Neutrophils^LN||1.8|10*3/uL|||||F|||20250301081500", "OBX^1^14", "no UTC offset"),
        ("OBX|1|XX|751-8^Neutrophils^LN||1.8|10*3/uL|||||F", "OBX^1^2", "value type"),
        ("OBX|1|NM|751-8^Neutrophils^LN||1.8|mg/dL^^ISO+|||||F", "OBX^1^6", "not known"),
        ("OBX|1|SN|751-8^Neutrophils^LN||~^1.8|10*3/uL|||||F", "OBX^1^5", "not positive"),
        ("OBX|1|SN|5196-1^HBsAg^LN||>^1000||||||F", "OBX^1^5", "not a result for hbsag"),
    ],
)
def test_a_bad_obx_publishes_nothing_and_the_ae_names_segment_and_field(obx: str, location: str, words: str) -> None:
    text = message(OBX[1], obx.replace("OBX|1|", "OBX|2|"))
    result = run(text)
    assert result.events == ()
    assert result.ack_code == "AE"
    location = location.replace("OBX^1", "OBX^2")  # the second OBX of the message
    errs = [s for s in result.ack(text).split("\r") if s.startswith("ERR")]
    assert any(s.split("|")[2] == location and words in s.split("|")[8] for s in errs), errs


@pytest.mark.parametrize(
    ("text", "location", "words"),
    [
        (message(msh=MSH.replace("20250301103000+0800", "20250301103000")), "MSH^1^7", "no UTC offset"),
        (message(pid="PID|1||MRN9^^^HOSP^MR"), "PID^1^3", "NCT06904729"),
        (message(pid="PID|1||Jane Doe^^^NCT06904729"), "PID^1^3", "participant_id"),
        (message(obr="OBR|1|ORD1|FIL123|SCREEN"), "OBR^1^7", "time missing"),
    ],
)
def test_header_problems_are_named_too(text: str, location: str, words: str) -> None:
    result = run(text)
    assert result.ack_code == "AE"
    assert result.events == ()
    assert any(f"{e.segment}^{e.sequence}^{e.field}" == location and words in e.message for e in result.errors)


@pytest.mark.parametrize(
    ("text", "location", "code"),
    [
        ("hello world", "MSH^1", "100"),
        (message(msh=MSH.replace("ORU^R01^ORU_R01", "ADT^A01^ADT_A01")), "MSH^1^9", "200"),
        (message(msh=MSH.replace("|2.5.1", "|2.9")), "MSH^1^12", "203"),
    ],
)
def test_a_malformed_message_is_refused_with_ar(text: str, location: str, code: str) -> None:
    result = run(text)
    assert result.ack_code == "AR"
    (err,) = [s.split("|") for s in result.ack(text).split("\r") if s.startswith("ERR")]
    assert (err[2], err[3].split("^")[0], err[4]) == (location, code, "E")


def test_the_ack_parses_back_with_hl7apy_strictly() -> None:
    text = message(OBX[0], "OBX|2|NM|751-8^Neutrophils^LN||1.8|10*3/mL^^UCUM|a|b~c&d\\e||F")
    now = dt.datetime(2025, 3, 1, 2, 31, tzinfo=dt.UTC)
    reply = ack(text, "AE", [Hl7Error("OBX", 2, 6, "unit '10*3/mL' | ^ ~ & \\ odd", 103)], now=now, control_id="A1")
    parsed = parse_message(reply, validation_level=VALIDATION_LEVEL.STRICT)
    parsed.validate()
    assert parsed.msh.msh_9.to_er7() == "ACK^R01^ACK"
    assert (parsed.msh.msh_5.to_er7(), parsed.msh.msh_6.to_er7()) == ("LABSYS", "SITE01LAB")
    assert parsed.msh.msh_7.to_er7() == "20250301023100+0000"
    assert (parsed.msa.msa_1.to_er7(), parsed.msa.msa_2.to_er7()) == ("AE", "MSG00001")
    assert parsed.err.err_2.to_er7() == "OBX^2^6"
    assert parsed.err.err_3.to_er7() == "103^Table value not found^HL70357"
    assert parsed.err.err_4.to_er7() == "E"
    assert parsed.err.err_8.to_er7() == "unit '10*3/mL' \\F\\ \\S\\ \\R\\ \\T\\ \\E\\ odd"


def test_sending_application_names_msh3_and_msh4() -> None:
    assert sending_application(message()) == ("LABSYS", "SITE01LAB")
    assert sending_application(MSH.replace("|LABSYS|", "|LABSYS^1.2.3^ISO|")) == ("LABSYS", "SITE01LAB")
    with pytest.raises(ValueError, match="MSH"):
        sending_application("PID|1")


def test_obx_status_c_corrects_and_d_retracts_the_final_result_of_the_same_obx() -> None:
    final = "OBX|1|NM|751-8^Neutrophils^LN||1.8|10*3/uL|||||F"
    (original,) = run(message(final)).events
    (correction,) = run(message(final.replace("||1.8|", "||2.4|").replace("|F", "|C"))).events
    assert isinstance(correction, LabResultCorrected)
    assert correction.payload.corrected_event_id == original.event_id
    assert correction.payload.value == 2.4
    (retraction,) = run(message(final.replace("|F", "|D"))).events
    assert isinstance(retraction, LabResultRetracted)
    assert retraction.payload.retracted_event_id == original.event_id
