"""HL7 v2 as labs in the field send it: whole panels (filtered), local times, v2.2 to v2.8, batches,
byte-order marks, the truncation character, MSH-18 character sets, SN bounds, text ranges, NTE."""

from __future__ import annotations

import datetime as dt

import pytest

from contracts.participant_events import ScreeningLabResulted
from services.gateway.fhir import SourceInfo
from services.gateway.hl7 import Hl7Result, oru_to_events
from services.gateway.hl7_wire import WireError, batch_ack, decode, split

SOURCE = SourceInfo(name="lab-site01", site="SITE01")
STUDY = "NCT06904729"
RECEIVED = dt.datetime(2025, 3, 1, 3, 0, tzinfo=dt.UTC)
MSH = "MSH|^~\\&|LABSYS|SITE01LAB|TRIALGUARD|NCT06904729|20250301103000||ORU^R01|MSG00001|P|2.5.1"
PID = "PID|1||P-001^^^NCT06904729^RI"
OBR = "OBR|1|ORD1|FIL123|58410-2^CBC panel^LN|||20250301080000"
CBC = [
    "OBX|1|NM|6690-2^WBC^LN||5.2|10*3/uL|4.0-10.0||||F",
    "OBX|2|NM|789-8^RBC^LN||4.1|10*6/uL|4.2-5.4|L|||F",
    "OBX|3|NM|718-7^Hemoglobin^LN||12.1|g/dL|12.0-16.0||||F",
    "OBX|4|NM|777-3^Platelets^LN||250|10*3/uL|150-400||||F",
    "OBX|5|NM|787-2^MCV^LN||88|fL|80-100||||F",
    "NTE|1||Specimen slightly hemolysed",
    "OBX|6|NM|751-8^Neutrophils^LN||3.1|10*3/uL|1.8-7.7||||F",
    "OBX|7|NM|731-0^Lymphocytes^LN||1.4|10*3/uL|1.0-4.8||||F",
]


def message(*obx: str, msh: str = MSH, obr: str = OBR) -> str:
    return "\r".join([msh, PID, obr, *(obx or CBC)])


def run(text: str, *, zone: str | None = "Asia/Shanghai", strict: bool = False) -> Hl7Result:
    return oru_to_events(
        text, SOURCE, STUDY, assigning_authority=STUDY, time_zone=zone, strict=strict, received_at=RECEIVED
    )


def analytes(result: Hl7Result) -> list[tuple[str, object, str | None]]:
    return [
        (e.payload.loinc, e.payload.value, e.payload.unit) for e in result.events if isinstance(e, ScreeningLabResulted)
    ]


def test_a_whole_cbc_publishes_the_study_analytes_and_lists_the_rest_as_not_used() -> None:
    result = run(message())
    assert result.ack_code == "AA"
    assert analytes(result) == [
        ("6690-2", 5.2, "10*3/uL"),
        ("718-7", 12.1, "g/dL"),
        ("751-8", 3.1, "10*3/uL"),
        ("731-0", 1.4, "10*3/uL"),
    ]
    info = [s for s in result.ack(message()).split("\r") if s.startswith("ERR")]
    assert info == [
        "ERR||OBX^2^3|0^Message accepted^HL70357|I||||LOINC 789-8 is not used by the study: not published",
        "ERR||OBX^4^3|0^Message accepted^HL70357|I||||LOINC 777-3 is not used by the study: not published",
        "ERR||OBX^5^3|0^Message accepted^HL70357|I||||LOINC 787-2 is not used by the study: not published",
    ]


def test_a_strict_source_has_the_same_cbc_refused_naming_each_result_not_used() -> None:
    result = run(message(), strict=True)
    assert (result.ack_code, result.events) == ("AE", ())
    assert [(e.segment, e.sequence, e.field) for e in result.errors] == [("OBX", 2, 3), ("OBX", 4, 3), ("OBX", 5, 3)]
    assert all("strict" in e.message for e in result.errors)


def test_a_bad_study_result_still_refuses_the_message_and_a_bad_unused_one_does_not() -> None:
    bad_platelets = CBC[3].replace("||250|", "||lots|")
    assert run(message(*CBC[:3], bad_platelets)).ack_code == "AA"
    bad_wbc = CBC[0].replace("10*3/uL|", "mg/dL|")
    result = run(message(bad_wbc, *CBC[1:]))
    assert (result.ack_code, result.events) == ("AE", ())
    assert [(e.segment, e.sequence, e.field) for e in result.errors] == [("OBX", 1, 6)]


def test_a_message_with_no_study_result_is_acknowledged_and_publishes_nothing() -> None:
    result = run(message(CBC[1], CBC[3]))
    assert (result.ack_code, result.events, len(result.not_used)) == ("AA", (), 2)


def test_local_times_are_read_in_the_source_time_zone() -> None:
    (wbc,) = run(message(CBC[0])).events
    assert wbc.occurred_at.isoformat() == "2025-03-01T08:00:00+08:00"  # OBR-7, local
    assert wbc.recorded_at.isoformat() == "2025-03-01T10:30:00+08:00"  # MSH-7, local
    assert wbc.source.recorded_at_from is None


def test_without_a_time_zone_a_local_time_is_refused_saying_how_to_register_one() -> None:
    result = run(message(CBC[0]), zone=None)
    assert result.ack_code == "AE"
    assert {(e.segment, e.field) for e in result.errors} == {("MSH", 7), ("OBR", 7)}
    assert "--time-zone" in result.errors[0].message


@pytest.mark.parametrize(
    ("obr7", "why"),
    [
        ("20250309023000", "does not exist in America/New_York"),  # clocks go forward at 02:00
        ("20251102013000", "happens twice in America/New_York"),  # clocks go back at 02:00
    ],
)
def test_a_local_time_the_clocks_skip_or_repeat_is_refused(obr7: str, why: str) -> None:
    result = run(message(CBC[0], obr=OBR.replace("20250301080000", obr7)), zone="America/New_York")
    assert result.ack_code == "AE"
    assert any(e.segment == "OBR" and e.field == 7 and why in e.message for e in result.errors), result.errors


def test_a_date_only_time_is_the_start_of_that_local_date_and_an_offset_wins() -> None:
    (wbc,) = run(message(CBC[0], obr=OBR.replace("20250301080000", "20250301"))).events
    assert wbc.occurred_at.isoformat() == "2025-03-01T00:00:00+08:00"
    (wbc,) = run(message(CBC[0], obr=OBR.replace("20250301080000", "202503010800-0500"))).events
    assert wbc.occurred_at.isoformat() == "2025-03-01T08:00:00-05:00"


def test_obx19_is_the_record_time_and_without_it_or_msh7_the_receipt_time_is_marked() -> None:
    analysed = CBC[0] + "||||||||20250301091500"
    (wbc,) = run(message(analysed)).events
    assert wbc.recorded_at.isoformat() == "2025-03-01T09:15:00+08:00"
    (wbc,) = run(message(CBC[0], msh=MSH.replace("|20250301103000|", "||"))).events
    assert wbc.recorded_at == RECEIVED
    assert wbc.source.recorded_at_from == "receipt"


@pytest.mark.parametrize("version", ["2.2", "2.3", "2.3.1", "2.4", "2.5", "2.6", "2.7", "2.7.1", "2.8", "2.8.2"])
def test_every_version_a_lab_sends_is_read(version: str) -> None:
    result = run(message(msh=MSH.replace("|2.5.1", f"|{version}")))
    assert (result.ack_code, len(result.events)) == ("AA", 4), result.errors


@pytest.mark.parametrize("version", ["2.1", "3.0", "2.9", ""])
def test_other_versions_are_refused_naming_the_versions_read(version: str) -> None:
    result = run(message(msh=MSH.replace("|2.5.1", f"|{version}")))
    assert result.ack_code == "AR"
    assert "2.2 to 2.8.2" in result.errors[0].message


def test_the_truncation_character_and_a_byte_order_mark_are_read() -> None:
    text = "\ufeff" + message(msh=MSH.replace("^~\\&", "^~\\&#").replace("|2.5.1", "|2.7"))
    assert len(run(text).events) == 4


def test_other_delimiters_are_refused_in_words_not_escape_sequences() -> None:
    text = message(msh=MSH.replace("^~\\&", "^~\\"))
    result = run(text)
    assert result.ack_code == "AR"
    err = next(s for s in result.ack(text).split("\r") if s.startswith("ERR"))
    assert "\\F\\" not in err
    assert "\\S\\" not in err
    assert "\\E\\" not in err
    assert "MSH-2 encoding characters ' [component]  [repetition]  [escape] '" in err


@pytest.mark.parametrize(
    ("obx", "value", "comparator"),
    [
        ("OBX|1|SN|11011-4^HCV RNA^LN||>^100000000|[IU]/mL|||||F", 1e8, ">"),
        ("OBX|1|SN|11011-4^HCV RNA^LN||<^15|[IU]/mL|||||F", 15.0, "<"),
        ("OBX|1|SN|11011-4^HCV RNA^LN||<=^15|[IU]/mL|||||F", 15.0, "<="),
        ("OBX|1|SN|1742-6^ALT^LN||^32|U/L|||||F", 32.0, None),
        ("OBX|1|NM|1742-6^ALT^LN||<5|U/L|||||F", 5.0, "<"),
        ("OBX|1|ST|2160-0^Creatinine^LN||>15.0|mg/dL|||||F", 15.0, ">"),
    ],
)
def test_a_bound_keeps_its_comparator(obx: str, value: float, comparator: str | None) -> None:
    (event,) = run(message(obx)).events
    assert isinstance(event, ScreeningLabResulted)
    assert (event.payload.value, event.payload.comparator) == (value, comparator)


@pytest.mark.parametrize(
    ("range_", "uln", "lln", "note"),
    [
        ("13 to 18", 18.0, 13.0, False),
        ("13 - 18 g/dL", 18.0, 13.0, False),
        ("<18 g/dl", 18.0, None, False),
        (">=13", None, 13.0, False),
        ("13-18 mmol/L", None, None, True),  # another unit than the result's
        ("see report", None, None, True),
    ],
)
def test_reference_ranges_as_text(range_: str, uln: float | None, lln: float | None, note: bool) -> None:
    result = run(message(f"OBX|1|NM|718-7^Hemoglobin^LN||12.1|g/dL|{range_}||||F"))
    (event,) = result.events
    assert isinstance(event, ScreeningLabResulted)
    assert (event.payload.uln, event.payload.lln) == (uln, lln)
    assert [(n.segment, n.field, n.severity) for n in result.notes] == ([("OBX", 7, "I")] if note else [])


def test_a_batch_is_split_into_its_messages_and_answered_with_one_ack_each() -> None:
    second = message(CBC[0], msh=MSH.replace("MSG00001", "MSG00002"))
    text = "\n".join(["FHS|^~\\&|LABSYS", "BHS|^~\\&|LABSYS||||||||B-7", message(CBC[0]), second, "BTS|2", "FTS|1"])
    batch = split(text)
    assert batch.batch
    assert len(batch.messages) == 2
    acks = [run(m).ack(m) for m in batch.messages]
    answer = batch_ack(acks, text).split("\r")
    assert answer[0].startswith("BHS|^~\\&|TRIALGUARD")
    assert answer[0].split("|")[11] == "B-7"
    assert [s for s in answer if s.startswith("MSA")] == ["MSA|AA|MSG00001", "MSA|AA|MSG00002"]
    assert answer[-1] == "BTS|2"


@pytest.mark.parametrize(
    ("charset", "encoding"), [("", "utf-8"), ("UNICODE UTF-8", "utf-8"), ("8859/1", "latin-1"), ("ASCII", "ascii")]
)
def test_msh18_names_the_character_set(charset: str, encoding: str) -> None:
    name = "Müller" if encoding != "ascii" else "Muller"
    text = message(msh=MSH + f"||||||{charset}").replace("P-001^^^", f"P-001^{name}^^")
    assert decode(text.encode(encoding)) == text
    assert decode(b"\xef\xbb\xbf" + text.encode(encoding)) == text


def test_bytes_not_in_the_named_character_set_are_refused_by_offset() -> None:
    text = message(msh=MSH + "||||||UNICODE UTF-8").replace("P-001^^^", "P-001^Müller^^")
    with pytest.raises(WireError, match=r"not UTF-8 at byte \d+ \(MSH-18 says UNICODE UTF-8\)"):
        decode(text.encode("latin-1"))
    with pytest.raises(WireError, match="MSH-18 character set 'EBCDIC' is not read"):
        decode(message(msh=MSH + "||||||EBCDIC").encode())
