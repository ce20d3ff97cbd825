"""The lab unit table (contracts/units.py): conversions per analyte, and what the contract
rejects for a LOINC code of the table. Facts from docs/clinical-reference.md."""

from __future__ import annotations

import json
from fractions import Fraction
from typing import Any

import pytest

from contracts import ContractError, parse_event
from contracts.participant_events import ScreeningLabResulted
from contracts.units import (
    ANALYTES,
    ANALYTES_BY_LOINC,
    ResultKindError,
    UnknownAnalyteError,
    UnknownUnitError,
    analyte_for,
    as_decimal,
    check_value,
    to_canonical,
)
from tests.builders import event_dict, example_lines


def _luhn_ok(loinc: str) -> bool:
    """LOINC's mod-10 check digit (the Luhn algorithm over the code without its dash)."""
    digits = [int(c) for c in loinc.replace("-", "")][::-1]
    total = sum(d if i % 2 == 0 else (2 * d if d < 5 else 2 * d - 9) for i, d in enumerate(digits))
    return total % 10 == 0


# --- the table ------------------------------------------------------------------------------


def test_every_loinc_code_of_the_table_has_a_valid_check_digit() -> None:
    assert [code for code in ANALYTES_BY_LOINC if not _luhn_ok(code)] == []


def test_each_loinc_code_is_in_one_row_only() -> None:
    codes = [code for a in ANALYTES for code in a.loincs]
    assert len(codes) == len(set(codes))


def test_every_numeric_analyte_takes_its_canonical_unit_as_is() -> None:
    for analyte in ANALYTES:
        if analyte.numeric:
            assert analyte.canonical_unit is not None
            assert analyte.factors[analyte.canonical_unit] == 1, analyte.name


@pytest.mark.parametrize(
    ("loinc", "name"),
    [
        ("731-0", "lymphocytes"),
        ("26474-7", "lymphocytes"),
        ("6690-2", "wbc"),
        ("804-5", "wbc"),
        ("751-8", "neutrophils"),
        ("753-4", "neutrophils"),
        ("718-7", "hemoglobin"),
        ("59260-0", "hemoglobin"),
        ("1742-6", "alt"),
        ("1920-8", "ast"),
        ("1975-2", "total_bilirubin"),
        ("14631-6", "total_bilirubin"),
        ("2160-0", "creatinine"),
        ("14682-9", "creatinine"),
        ("38483-4", "creatinine"),
        ("20509-6", "hemoglobin"),
        ("1743-4", "alt"),
        ("1744-2", "alt"),
        ("76625-3", "alt"),
        ("30239-8", "ast"),
        ("42719-5", "total_bilirubin"),
        ("46418-0", "inr"),
        ("10676-5", "hcv_rna"),
        ("6301-6", "inr"),
        ("5902-2", "pt"),
        ("8116-6", "cd19_count"),
        ("8117-4", "cd19_percent"),
        ("2890-2", "upcr"),
        ("5048-4", "ana"),
        ("29953-7", "ana"),
        ("5196-1", "hbsag"),
        ("16933-4", "anti_hbc"),
        ("16128-1", "anti_hcv"),
        ("31201-7", "hiv"),
        ("56888-1", "hiv"),
        ("24110-9", "syphilis"),
        ("42595-9", "hbv_dna"),
        ("29615-2", "hbv_dna"),
        ("11011-4", "hcv_rna"),
        ("11259-9", "hcv_rna"),
    ],
)
def test_loinc_codes_name_their_analyte(loinc: str, name: str) -> None:
    analyte = analyte_for(loinc)
    assert analyte is not None
    assert analyte.name == name


@pytest.mark.parametrize(
    "loinc",
    [
        pytest.param("8124-0", id="CD3 percent, not CD19"),
        pytest.param("20507-0", id="RPR, non-treponemal"),
        pytest.param("68961-2", id="HIV-1 rapid test"),
        pytest.param("50384-7", id="eGFR by Schwartz: computed, not a screening lab"),
    ],
)
def test_codes_that_look_right_and_are_not_stay_out_of_the_table(loinc: str) -> None:
    assert analyte_for(loinc) is None


# --- conversions ----------------------------------------------------------------------------

CONVERSIONS = [
    # (id, loinc, value, unit, value in the canonical unit)
    ("neutrophils 10*9/L as is", "751-8", 1.8, "10*9/L", 1.8),
    ("neutrophils 10*3/uL = 10*9/L", "751-8", 1.8, "10*3/uL", 1.8),
    ("neutrophils /uL ÷ 1000", "751-8", 1800, "/uL", 1.8),
    ("neutrophils /mm3 ÷ 1000", "751-8", 1800, "/mm3", 1.8),
    ("neutrophils 10*6/L ÷ 1000", "751-8", 1800, "10*6/L", 1.8),
    ("lymphocytes /uL at the threshold", "731-0", 1000, "/uL", 1.0),
    ("WBC 10*3/uL", "6690-2", 3.0, "10*3/uL", 3.0),
    ("WBC /uL", "804-5", 4200, "/uL", 4.2),
    ("hemoglobin g/L as is", "718-7", 98, "g/L", 98.0),
    ("hemoglobin g/dL × 10", "718-7", 9.8, "g/dL", 98.0),
    ("hemoglobin 6.0 g/dL is exactly 60 g/L", "718-7", 6.0, "g/dL", 60.0),
    ("hemoglobin mmol/L × 16.1", "59260-0", 6.0, "mmol/L", 96.6),
    ("ALT U/L", "1742-6", 30, "U/L", 30.0),
    ("ALT IU/L", "1742-6", 30, "IU/L", 30.0),
    ("AST [IU]/L", "1920-8", 28, "[IU]/L", 28.0),
    ("bilirubin mg/dL as is", "1975-2", 0.6, "mg/dL", 0.6),
    ("bilirubin umol/L ÷ 17.1", "1975-2", 17.1, "umol/L", 1.0),
    ("bilirubin umol/L, molar code", "14631-6", 34.2, "umol/L", 2.0),
    ("creatinine mg/dL as is", "2160-0", 0.55, "mg/dL", 0.55),
    ("creatinine umol/L ÷ 88.4", "2160-0", 88.4, "umol/L", 1.0),
    ("creatinine umol/L, molar code", "14682-9", 53, "umol/L", 53 / 88.4),
    ("INR {INR}", "6301-6", 1.2, "{INR}", 1.2),
    ("INR {ratio}", "34714-6", 1.2, "{ratio}", 1.2),
    ("INR unity", "6301-6", 1.2, "1", 1.2),
    ("INR without a unit", "6301-6", 1.2, None, 1.2),
    ("PT s", "5902-2", 12.5, "s", 12.5),
    ("PT sec", "5964-2", 12.5, "sec", 12.5),
    ("CD19 /uL as is", "8116-6", 250, "/uL", 250.0),
    ("CD19 10*6/L = /uL", "8116-6", 250, "10*6/L", 250.0),
    ("CD19 10*9/L × 1000", "8116-6", 0.25, "10*9/L", 250.0),
    ("CD19 10*3/uL × 1000", "8116-6", 0.25, "10*3/uL", 250.0),
    ("CD19 %", "8117-4", 12.5, "%", 12.5),
    ("UPCR mg/mg as is", "2890-2", 0.5, "mg/mg", 0.5),
    ("UPCR g/g = mg/mg", "2890-2", 0.5, "g/g", 0.5),
    ("UPCR mg/g{creat} ÷ 1000", "2890-2", 500, "mg/g{creat}", 0.5),
    ("UPCR mg/g ÷ 1000", "34366-5", 3000, "mg/g", 3.0),
    ("UPCR mg/mmol{creat}: 113.1 mg/mmol = 1 g/g", "2890-2", 113.1, "mg/mmol{creat}", 1.0),
    ("UPCR mg/mmol", "2890-2", 56.55, "mg/mmol", 0.5),
    ("ANA dilution {titer}", "5048-4", 160, "{titer}", 160.0),
    ("ANA dilution without a unit", "29953-7", 160, None, 160.0),
    ("HBV DNA IU/mL", "42595-9", 2000, "[IU]/mL", 2000.0),
    ("HBV DNA copies/mL", "29615-2", 2000, "{copies}/mL", 2000.0),
    ("HCV RNA IU/mL", "11011-4", 15, "[IU]/mL", 15.0),
]


@pytest.mark.parametrize(
    ("loinc", "value", "unit", "expected"), [c[1:] for c in CONVERSIONS], ids=[c[0] for c in CONVERSIONS]
)
def test_to_canonical_converts_to_the_unit_of_the_criterion(
    loinc: str, value: float, unit: str | None, expected: float
) -> None:
    assert to_canonical(loinc, value, unit) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(
    ("loinc", "value", "unit", "exactly"),
    [
        pytest.param("2160-0", 88.4, "umol/L", 1.0, id="creatinine 88.4 umol/L"),
        pytest.param("1975-2", 25.65, "umol/L", 1.5, id="bilirubin 25.65 umol/L"),
        pytest.param("718-7", 6.0, "g/dL", 60.0, id="hemoglobin 6.0 g/dL"),
        pytest.param("751-8", 1000, "/uL", 1.0, id="neutrophils 1000 /uL"),
        pytest.param("2890-2", 113.1, "mg/mmol", 1.0, id="UPCR 113.1 mg/mmol"),
    ],
)
def test_conversions_at_thresholds_are_exact(loinc: str, value: float, unit: str, exactly: float) -> None:
    assert to_canonical(loinc, value, unit) == exactly


def test_as_decimal_reads_a_number_as_the_decimal_it_is_written_as() -> None:
    assert as_decimal(1.8) == Fraction(9, 5)
    assert as_decimal(1e-05) == Fraction(1, 100000)
    assert as_decimal(3) == 3


UNKNOWN_UNITS = [
    # (id, loinc, value, unit, words the message must contain)
    ("creatinine mg/L", "2160-0", 10.0, "mg/L", ["creatinine", "'mg/L'", "2160-0", "mg/dL, umol/L"]),
    # UCUM is case-sensitive, but it has both litres, l and L: mg/dl is mg/dL. MG/DL is not UCUM.
    ("creatinine upper-case MG/DL (UCUM is case-sensitive)", "2160-0", 0.5, "MG/DL", ["creatinine", "'MG/DL'"]),
    ("creatinine without a unit", "2160-0", 0.5, None, ["creatinine", "no unit"]),
    ("hemoglobin mg/dL", "718-7", 98, "mg/dL", ["hemoglobin", "'mg/dL'", "g/L, g/dL, mmol/L"]),
    ("neutrophils %", "751-8", 60, "%", ["neutrophils", "'%'"]),
    ("neutrophils without a unit", "751-8", 1.8, None, ["neutrophils", "no unit"]),
    ("bilirubin mmol/L", "1975-2", 0.02, "mmol/L", ["total_bilirubin", "'mmol/L'"]),
    ("CD19 % in /uL", "8117-4", 12.5, "/uL", ["cd19_percent", "'/uL'"]),
    ("CD19 % without a unit (fraction or percent?)", "8117-4", 12.5, None, ["cd19_percent", "no unit"]),
    ("UPCR mg/dL", "2890-2", 0.5, "mg/dL", ["upcr", "'mg/dL'"]),
    ("HBV DNA IU code in copies", "42595-9", 2000, "{copies}/mL", ["hbv_dna", "'{copies}/mL'", "[IU]/mL"]),
    ("PT in %", "5902-2", 80, "%", ["pt", "'%'"]),
]


@pytest.mark.parametrize(
    ("loinc", "value", "unit", "words"), [c[1:] for c in UNKNOWN_UNITS], ids=[c[0] for c in UNKNOWN_UNITS]
)
def test_an_unknown_unit_raises_naming_analyte_and_unit(
    loinc: str, value: float, unit: str | None, words: list[str]
) -> None:
    with pytest.raises(UnknownUnitError) as caught:
        to_canonical(loinc, value, unit)
    for word in words:
        assert word in str(caught.value)


def test_the_unknown_unit_message_reads_as_documented() -> None:
    with pytest.raises(UnknownUnitError, match="expected one of") as caught:
        to_canonical("2160-0", 10.0, "mg/L")
    assert str(caught.value) == "unit 'mg/L' is not known for creatinine (LOINC 2160-0); expected one of: mg/dL, umol/L"


def test_an_ordinal_test_has_no_number_to_convert() -> None:
    with pytest.raises(UnknownUnitError, match="hbsag"):
        to_canonical("5196-1", 1.0, None)


def test_a_code_outside_the_table_has_no_conversion() -> None:
    with pytest.raises(UnknownAnalyteError, match="99999-9"):
        to_canonical("99999-9", 1.0, "mg/dL")


def test_check_value_ignores_codes_outside_the_table() -> None:
    check_value("99999-9", "positive")


def test_check_value_names_the_analyte() -> None:
    with pytest.raises(ResultKindError, match=r"creatinine \(LOINC 2160-0\)"):
        check_value("2160-0", "positive")


# --- the contract ---------------------------------------------------------------------------


def _lab(payload: dict[str, Any]) -> str:
    return json.dumps(event_dict("ScreeningLabResulted", payload))


def test_every_example_lab_still_parses() -> None:
    labs = [line for line in example_lines() if b'"ScreeningLabResulted"' in line]
    assert labs
    for line in labs:
        assert isinstance(parse_event(line), ScreeningLabResulted)


ACCEPTED = [
    # (id, payload)
    ("creatinine in umol/L", {"loinc": "2160-0", "value": 53, "unit": "umol/L"}),
    ("hemoglobin in g/dL", {"loinc": "718-7", "value": 9.8, "unit": "g/dL"}),
    ("neutrophils in /uL", {"loinc": "751-8", "value": 1800, "unit": "/uL"}),
    ("ANA titre string", {"loinc": "5048-4", "value": "1:160", "unit": "{titer}"}),
    ("ANA titre string, no unit", {"loinc": "5048-4", "value": "1:1280", "unit": None}),
    ("ANA negative", {"loinc": "5048-4", "value": "negative", "unit": None}),
    ("ANA dilution as a number", {"loinc": "29953-7", "value": 160, "unit": "{titer}"}),
    ("HBsAg positive", {"loinc": "5196-1", "value": "positive", "unit": None}),
    ("HIV equivocal", {"loinc": "56888-1", "value": "equivocal", "unit": None}),
    ("syphilis negative, unit omitted", {"loinc": "24110-9", "value": "negative"}),
    ("HBV DNA number", {"loinc": "42595-9", "value": 2000, "unit": "[IU]/mL"}),
    ("HBV DNA not detected", {"loinc": "42595-9", "value": "negative", "unit": "[IU]/mL"}),
    ("HCV RNA number", {"loinc": "11011-4", "value": 15, "unit": "[IU]/mL"}),
    ("HCV RNA presence", {"loinc": "11259-9", "value": "positive", "unit": None}),
    ("CD19 count", {"loinc": "8116-6", "value": 250, "unit": "/uL"}),
    ("CD19 count zero", {"loinc": "8116-6", "value": 0, "unit": "/uL"}),
    ("CD19 % qualitative positive", {"loinc": "8117-4", "value": "positive", "unit": None}),
    ("CD19 count qualitative negative", {"loinc": "8116-6", "value": "negative", "unit": None}),
    ("INR without a unit", {"loinc": "6301-6", "value": 1.1, "unit": None}),
    ("INR, unit omitted", {"loinc": "6301-6", "value": 1.1}),
    ("unknown LOINC, any unit", {"loinc": "2345-7", "value": 5.4, "unit": "mmol/L"}),
    ("unknown LOINC, any value", {"loinc": "2345-7", "value": "positive", "unit": "whatever"}),
]


@pytest.mark.parametrize("payload", [c[1] for c in ACCEPTED], ids=[c[0] for c in ACCEPTED])
def test_possible_lab_results_parse(payload: dict[str, Any]) -> None:
    event = parse_event(_lab(payload))
    assert isinstance(event, ScreeningLabResulted)
    assert event.payload.loinc == payload["loinc"]


REJECTED = [
    # (id, payload, field, words the message must contain)
    ("creatinine mg/L", {"loinc": "2160-0", "value": 10, "unit": "mg/L"}, "payload.unit", ["creatinine", "'mg/L'"]),
    ("hemoglobin unit null", {"loinc": "718-7", "value": 98, "unit": None}, "payload.unit", ["hemoglobin", "no unit"]),
    ("hemoglobin unit omitted", {"loinc": "718-7", "value": 98}, "payload", ["hemoglobin", "no unit"]),
    ("HBsAg with a unit", {"loinc": "5196-1", "value": "negative", "unit": "mg/dL"}, "payload.unit", ["hbsag"]),
    ("ANA titre in mg/dL", {"loinc": "5048-4", "value": "1:160", "unit": "mg/dL"}, "payload.unit", ["ana", "mg/dL"]),
    ("creatinine positive", {"loinc": "2160-0", "value": "positive", "unit": None}, "payload.value", ["creatinine"]),
    ("neutrophils a titre", {"loinc": "751-8", "value": "1:160", "unit": "10*9/L"}, "payload.value", ["neutrophils"]),
    ("HBsAg a number", {"loinc": "5196-1", "value": 3.2, "unit": None}, "payload.value", ["hbsag", "'positive'"]),
    ("HIV a titre", {"loinc": "31201-7", "value": "1:40", "unit": None}, "payload.value", ["hiv"]),
    ("ANA positive without a titre", {"loinc": "5048-4", "value": "positive"}, "payload.value", ["ana"]),
    ("ANA a fractional dilution", {"loinc": "5048-4", "value": 160.5}, "payload.value", ["ana", "whole"]),
    ("ANA dilution zero", {"loinc": "5048-4", "value": 0}, "payload.value", ["ana"]),
    ("hemoglobin negative", {"loinc": "718-7", "value": -98, "unit": "g/L"}, "payload.value", ["hemoglobin"]),
    ("CD19 count a titre", {"loinc": "8116-6", "value": "1:10", "unit": "/uL"}, "payload.value", ["cd19_count"]),
]


@pytest.mark.parametrize(("payload", "field", "words"), [c[1:] for c in REJECTED], ids=[c[0] for c in REJECTED])
def test_impossible_lab_results_break_the_contract_naming_field_analyte_and_unit(
    payload: dict[str, Any], field: str, words: list[str]
) -> None:
    with pytest.raises(ContractError) as caught:
        parse_event(_lab(payload))
    assert caught.value.field == field
    for word in words:
        assert word in caught.value.problem


def test_a_unit_error_is_logged_by_kind_without_the_unit() -> None:
    with pytest.raises(ContractError) as caught:
        parse_event(_lab({"loinc": "2160-0", "value": 10, "unit": "mg/L"}))
    assert caught.value.summary() == "payload.unit:lab_unit_unknown"


# --- units recognized by UCUM (ucumvert) --------------------------------------------------------


@pytest.mark.parametrize(
    ("loinc", "unit", "listed"),
    [
        ("6690-2", "{cells}/uL", "/uL"),
        ("751-8", "/nL", "10*9/L"),
        ("731-0", "10*3/mm3", "10*3/uL"),
        ("2160-0", "mg/dl", "mg/dL"),
        ("29615-2", "/mL", "{copies}/mL"),
    ],
)
def test_a_unit_ucum_says_is_a_listed_one_converts_by_the_listed_exact_factor(
    loinc: str, unit: str, listed: str
) -> None:
    for value in (0.1, 1.8, 5400.0, 88.4):
        assert to_canonical(loinc, value, unit) == to_canonical(loinc, value, listed)


@pytest.mark.parametrize(
    ("loinc", "unit"),
    [
        pytest.param("42595-9", "{copies}/mL", id="copies are not international units"),
        pytest.param("29615-2", "[IU]/mL", id="international units are not copies"),
        pytest.param("8117-4", "1", id="a percentage is not a fraction"),
        pytest.param("718-7", "mmol/g", id="another dimension"),
        pytest.param("751-8", "10*6/uL", id="a thousand times more"),
        pytest.param("1742-6", "[arb'U]/L", id="another arbitrary unit"),
        pytest.param("6690-2", "{cells}/(uL", id="not UCUM"),
    ],
)
def test_a_unit_ucum_does_not_equate_to_a_listed_one_is_refused(loinc: str, unit: str) -> None:
    with pytest.raises(UnknownUnitError, match="is not known"):
        to_canonical(loinc, 1.0, unit)


def test_a_cell_count_with_a_ucum_annotation_is_a_valid_event() -> None:
    event = event_dict("ScreeningLabResulted")
    event["payload"] = {"loinc": "6690-2", "value": 5400, "unit": "{cells}/uL"}
    parsed = parse_event(json.dumps(event))
    assert isinstance(parsed, ScreeningLabResulted)
    assert parsed.payload.unit == "{cells}/uL"
