"""Clinical calculators (protocol/clinical.py) against the published values in
docs/clinical-reference.md, and their boundaries."""

from __future__ import annotations

import datetime as dt

import pytest

from contracts.units import UnknownUnitError
from protocol.clinical import (
    EQUIVOCAL_COUNTS_AS_POSITIVE,
    age_in_years,
    ana_titre,
    cells_per_kg,
    ckd_epi_2021_egfr,
    cockcroft_gault_crcl,
    creatinine_mg_dl,
    is_positive,
    schwartz_egfr,
    uln_multiple,
)

# --- bedside Schwartz -----------------------------------------------------------------------

SCHWARTZ = [
    # (id, height cm, creatinine, unit, published eGFR) — clinical.md, "Bedside Schwartz eGFR"
    ("100 cm, 0.4 mg/dL", 100, 0.4, "mg/dL", 103.3),
    ("100 cm, 0.5 mg/dL", 100, 0.5, "mg/dL", 82.6),
    ("150 cm, 53 umol/L", 150, 53, "umol/L", 103.3),
    ("140 cm, 1.9 mg/dL", 140, 1.9, "mg/dL", 30.4),
]


@pytest.mark.parametrize(
    ("height_cm", "creatinine", "unit", "egfr"), [c[1:] for c in SCHWARTZ], ids=[c[0] for c in SCHWARTZ]
)
def test_bedside_schwartz_matches_the_published_worked_values(
    height_cm: float, creatinine: float, unit: str, egfr: float
) -> None:
    assert schwartz_egfr(height_cm, creatinine_mg_dl(creatinine, unit)) == pytest.approx(egfr, abs=0.1)


def test_schwartz_in_umol_per_litre_agrees_with_the_36_5_shortcut() -> None:
    # clinical.md: eGFR = 36.5 × height / creatinine (umol/L); 36.5 is 0.413 × 88.4 rounded.
    assert schwartz_egfr(150, creatinine_mg_dl(53, "umol/L")) == pytest.approx(36.5 * 150 / 53, rel=1e-3)


def test_schwartz_is_not_rounded() -> None:
    assert schwartz_egfr(100, 0.4) == 103.25


@pytest.mark.parametrize(
    ("height_cm", "creatinine_mg_dl"),
    [pytest.param(100, 0, id="zero creatinine"), pytest.param(0, 0.5, id="zero height")],
)
def test_schwartz_refuses_impossible_inputs(height_cm: float, creatinine_mg_dl: float) -> None:
    with pytest.raises(ValueError, match="above zero"):
        schwartz_egfr(height_cm, creatinine_mg_dl)


def test_creatinine_in_an_unknown_unit_raises_naming_it() -> None:
    with pytest.raises(UnknownUnitError, match=r"'mg/L' is not known for creatinine"):
        creatinine_mg_dl(5.3, "mg/L")


# --- ULN multiple ---------------------------------------------------------------------------

ULN = [
    # (id, value, ULN, multiple)
    ("ALT at 3×ULN", 120, 40, 3.0),
    ("ALT under", 30, 40, 0.75),
    ("bilirubin at 1.5×ULN, decimals", 1.8, 1.2, 1.5),
    ("INR at 1.5 with ULN 1.0", 1.5, 1.0, 1.5),
    ("PT", 12.5, 13.5, 12.5 / 13.5),
]


@pytest.mark.parametrize(("value", "uln", "multiple"), [c[1:] for c in ULN], ids=[c[0] for c in ULN])
def test_uln_multiple(value: float, uln: float, multiple: float) -> None:
    assert uln_multiple(value, uln) == pytest.approx(multiple, rel=1e-12)


def test_uln_multiple_is_exact_at_the_boundary() -> None:
    # In binary floating point 1.8 / 1.2 is 1.5000000000000002, which is "> 1.5×ULN".
    assert uln_multiple(1.8, 1.2) == 1.5


def test_uln_multiple_refuses_a_zero_uln() -> None:
    with pytest.raises(ValueError, match="upper limit"):
        uln_multiple(1.0, 0)


# --- ANA titre ------------------------------------------------------------------------------

TITRES = [
    # (id, value, dilution)
    ("1:80", "1:80", 80),
    ("1:160", "1:160", 160),
    ("1:1280", "1:1280", 1280),
    ("negative", "negative", None),
    ("dilution as a number", 320.0, 320),
    ("dilution as an int", 40, 40),
]


@pytest.mark.parametrize(("value", "dilution"), [c[1:] for c in TITRES], ids=[c[0] for c in TITRES])
def test_ana_titre_is_the_dilution(value: str | float, dilution: int | None) -> None:
    assert ana_titre(value) == dilution


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("positive", id="positive without a titre"),
        pytest.param("equivocal", id="equivocal"),
        pytest.param("1:0", id="zero dilution"),
        pytest.param("1:", id="no dilution"),
        pytest.param("160", id="a bare number as text"),
        pytest.param("1/160", id="slash"),
        pytest.param(" 1:160", id="leading space"),
        pytest.param("1:80 ", id="trailing space"),
        pytest.param("lots", id="free text"),
        pytest.param(0, id="zero"),
        pytest.param(80.5, id="fraction"),
        pytest.param(-80, id="negative number"),
        pytest.param(True, id="a boolean"),
    ],
)
def test_ana_titre_refuses_what_is_not_a_titre(value: str | float) -> None:
    with pytest.raises(ValueError, match="not an ANA titre"):
        ana_titre(value)


# --- cells per kg ---------------------------------------------------------------------------


def test_cells_per_kg() -> None:
    assert cells_per_kg(13_750_000, 27.5) == 500_000


def test_cells_per_kg_is_exact_on_decimals() -> None:
    assert cells_per_kg(3.3e7, 33.0) == 1e6


def test_cells_per_kg_refuses_a_zero_weight() -> None:
    with pytest.raises(ValueError, match="weight"):
        cells_per_kg(1e7, 0)


# --- qualitative results --------------------------------------------------------------------

QUALITATIVE = [
    ("positive", "positive", True),
    ("negative", "negative", False),
    ("equivocal counts as positive (ASSUMPTION)", "equivocal", True),
]


@pytest.mark.parametrize(("value", "positive"), [c[1:] for c in QUALITATIVE], ids=[c[0] for c in QUALITATIVE])
def test_is_positive(value: str, positive: bool) -> None:
    assert is_positive(value) is positive


def test_the_equivocal_assumption_is_the_conservative_one() -> None:
    assert EQUIVOCAL_COUNTS_AS_POSITIVE is True


@pytest.mark.parametrize("value", [pytest.param("1:160", id="titre"), pytest.param(2.0, id="number"), "Positive"])
def test_is_positive_refuses_what_is_not_qualitative(value: str | float) -> None:
    with pytest.raises(ValueError, match="not a qualitative result"):
        is_positive(value)


# --- age ------------------------------------------------------------------------------------

AGES = [
    # (id, birth date, on, completed years)
    ("day before 19th birthday", "2007-05-01", "2026-04-30", 18),
    ("19th birthday", "2007-05-01", "2026-05-01", 19),
    ("day before 6th birthday", "2019-11-03", "2025-11-02", 5),
    ("6th birthday", "2019-11-03", "2025-11-03", 6),
    ("day of birth", "2019-11-03", "2019-11-03", 0),
    ("year end", "2012-12-31", "2025-12-30", 12),
    ("new year", "2012-12-31", "2025-12-31", 13),
    ("29 Feb: 28 Feb of a non-leap year is before the birthday", "2008-02-29", "2027-02-28", 18),
    ("29 Feb: the birthday is 1 Mar in a non-leap year", "2008-02-29", "2027-03-01", 19),
    ("29 Feb: on 29 Feb of a leap year", "2008-02-29", "2028-02-29", 20),
    ("29 Feb: 28 Feb of a leap year", "2008-02-29", "2028-02-28", 19),
]


@pytest.mark.parametrize(("born", "on", "years"), [c[1:] for c in AGES], ids=[c[0] for c in AGES])
def test_age_in_completed_years(born: str, on: str, years: int) -> None:
    assert age_in_years(dt.date.fromisoformat(born), dt.date.fromisoformat(on)) == years


# --- Cockcroft-Gault and CKD-EPI 2021 (the adult formulas; docs/clinical-reference.md) ---------


@pytest.mark.parametrize(
    ("age", "weight_kg", "sex", "creatinine", "crcl"),
    [(40, 70, "M", 1.0, 97.2), (40, 70, "F", 1.0, 82.6), (65, 60, "F", 0.9, 59.0)],
)
def test_cockcroft_gault_matches_the_worked_values(
    age: int, weight_kg: float, sex: str, creatinine: float, crcl: float
) -> None:
    assert cockcroft_gault_crcl(age, weight_kg, sex, creatinine) == pytest.approx(crcl, abs=0.05)


@pytest.mark.parametrize(
    ("age", "sex", "creatinine", "egfr"), [(40, "M", 1.0, 97.6), (40, "F", 0.7, 112.1), (60, "F", 1.2, 51.8)]
)
def test_ckd_epi_2021_matches_the_worked_values(age: int, sex: str, creatinine: float, egfr: float) -> None:
    assert ckd_epi_2021_egfr(age, sex, creatinine) == pytest.approx(egfr, abs=0.05)


@pytest.mark.parametrize(
    ("call", "words"),
    [
        (lambda: cockcroft_gault_crcl(40, 0, "F", 1.0), "weight must be above zero"),
        (lambda: cockcroft_gault_crcl(40, 70, "F", 0), "creatinine must be above zero"),
        (lambda: cockcroft_gault_crcl(140, 70, "F", 1.0), "age of 0..139"),
        (lambda: cockcroft_gault_crcl(40, 70, "X", 1.0), "sex must be"),
        (lambda: ckd_epi_2021_egfr(17, "F", 1.0), "adult equation"),
        (lambda: ckd_epi_2021_egfr(40, "F", -1.0), "creatinine must be above zero"),
    ],
)
def test_the_adult_formulas_refuse_what_they_cannot_compute(call: object, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        call()  # type: ignore[operator]
