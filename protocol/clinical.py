"""Clinical calculators (pure, no I/O, no clock).

Every function cites its source in docs/clinical-reference.md. Numbers are computed on the
decimals they are written as and rounded once, at the end (``contracts.units.as_decimal``);
nothing is rounded for display here, so a rule compares the exact value with its threshold.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from typing import Final

from contracts.units import QUALITATIVE_RESULTS, as_decimal, to_canonical

SCHWARTZ_K: Final = 0.413
"""Bedside Schwartz constant for creatinine in mg/dL and height in cm (Schwartz et al., JASN
2009;20:629–637; clinical.md, "Bedside Schwartz eGFR")."""

CREATININE_LOINC: Final = "2160-0"
"""Creatinine [Mass/volume] in Serum or Plasma (clinical.md, LOINC table)."""

EQUIVOCAL_COUNTS_AS_POSITIVE: Final = True
"""ASSUMPTION: an equivocal qualitative result counts as positive. The screening tests judged
qualitatively (HBsAg, anti-HBc, anti-HCV, HIV, treponemal syphilis, CD19 by flow) decide safety
exclusions, and an equivocal result is not evidence of absence; the registry record does not say.
An equivocal CD19 therefore counts as CD19-positive too."""

_TITRE = re.compile(r"^1:([1-9]\d*)$")


def age_in_years(birth_date: dt.date, on: dt.date) -> int:
    """Completed years of age on a date; the birthday itself counts as the new year.

    Source: clinical.md, "Decisions where the registry record is ambiguous" (age 6–18 years
    including critical value: 6th birthday ≤ consent date < 19th birthday).

    Someone born on 29 February has their birthday on 1 March in a non-leap year (the
    (month, day) comparison: 28 February is before it, 1 March is not).

    Args:
        birth_date: date of birth.
        on: the date the age is wanted for (e.g. the consent date).

    Returns:
        The number of completed years (negative when ``on`` is before ``birth_date``).
    """
    had_birthday = (on.month, on.day) >= (birth_date.month, birth_date.day)
    return on.year - birth_date.year - (0 if had_birthday else 1)


def schwartz_egfr(height_cm: float, creatinine_mg_dl: float) -> float:
    """Bedside Schwartz eGFR: 0.413 × height (cm) / serum creatinine (mg/dL).

    Source: clinical.md, "Bedside Schwartz eGFR" (Schwartz et al., JASN 2009;20:629–637).
    Worked values: 100 cm and 0.4 mg/dL → 103.3; 140 cm and 1.9 mg/dL → 30.4. For creatinine
    in µmol/L, convert first with ``creatinine_mg_dl``.

    Args:
        height_cm: height in cm.
        creatinine_mg_dl: serum creatinine in mg/dL.

    Returns:
        eGFR in mL/min/1.73 m², unrounded.

    Raises:
        ValueError: height or creatinine is not above zero.
    """
    if height_cm <= 0:
        raise ValueError(f"height must be above zero (got {height_cm} cm)")
    if creatinine_mg_dl <= 0:
        raise ValueError(f"creatinine must be above zero (got {creatinine_mg_dl} mg/dL)")
    return float(as_decimal(SCHWARTZ_K) * as_decimal(height_cm) / as_decimal(creatinine_mg_dl))


def creatinine_mg_dl(value: float, unit: str | None) -> float:
    """Serum creatinine in mg/dL from a result in any accepted unit (mg/dL = µmol/L ÷ 88.4).

    Source: clinical.md, "Bedside Schwartz eGFR" and "Conversions".

    Args:
        value: the creatinine result.
        unit: its UCUM unit (``mg/dL`` or ``umol/L``).

    Returns:
        Creatinine in mg/dL, unrounded.

    Raises:
        contracts.units.UnknownUnitError: the unit is not a creatinine unit.
    """
    return to_canonical(CREATININE_LOINC, value, unit)


@functools.lru_cache(maxsize=8192)  # pure; exact (rational) arithmetic is slow, and results repeat
def uln_multiple(value: float, uln: float) -> float:
    """A result as a multiple of the laboratory's upper limit of normal (value ÷ ULN).

    Source: clinical.md, "Decisions where the registry record is ambiguous" (INR ≤ 1.5×ULN) and
    the organ-function criteria of DESIGN.md (ALT/AST > 3×ULN, TBIL > 1.5×ULN). The division is
    exact on the decimals, so 1.8 with a ULN of 1.2 is exactly 1.5: compare this multiple with
    the criterion, not ``value / uln`` in floating point.

    Args:
        value: the result, in the unit of ``uln``.
        uln: the upper limit of normal.

    Returns:
        value ÷ uln, unrounded.

    Raises:
        ValueError: ``uln`` is not above zero.
    """
    if uln <= 0:
        raise ValueError(f"the upper limit of normal must be above zero (got {uln})")
    return float(as_decimal(value) / as_decimal(uln))


def ana_titre(value: str | float) -> int | None:
    """The dilution of an ANA titre: "1:160" → 160; the number 160 → 160; "negative" → None.

    Source: clinical.md, "Conversions" (an ANA titre "1:160" is the dilution 160) and the
    2019 EULAR/ACR entry criterion (ANA ≥ 1:80).

    Args:
        value: a lab result value of an ANA titre code (5048-4, 29953-7).

    Returns:
        The dilution, or None for a negative result (below the first dilution tested).

    Raises:
        ValueError: the value is not a titre: "positive" without a titre, a fraction, zero,
            free text.
    """
    if isinstance(value, str):
        if value == "negative":
            return None
        match = _TITRE.match(value)
        if match is None:
            raise ValueError(f"not an ANA titre: {value!r} (expected e.g. '1:160' or 'negative')")
        return int(match.group(1))
    if isinstance(value, bool) or value < 1 or value != int(value):
        raise ValueError(f"not an ANA titre: {value!r} (a dilution is a whole number ≥ 1)")
    return int(value)


def cells_per_kg(total_cells: float, weight_kg: float) -> float:
    """Infused CAR-T cells per kg of body weight.

    Source: clinical.md, "Decisions where the registry record is ambiguous" (dose
    "approximately" the arm's target cells/kg); DESIGN.md DOSE-01 (low 5×10⁵/kg, high 1×10⁶/kg).

    Args:
        total_cells: cells infused.
        weight_kg: body weight in kg (the weight the infusion was dosed for).

    Returns:
        total_cells ÷ weight_kg, unrounded.

    Raises:
        ValueError: weight is not above zero.
    """
    if weight_kg <= 0:
        raise ValueError(f"weight must be above zero (got {weight_kg} kg)")
    return float(as_decimal(total_cells) / as_decimal(weight_kg))


def is_positive(value: str | float) -> bool:
    """Whether a qualitative result counts as positive.

    Source: clinical.md, LOINC table (HBsAg, anti-HBc, anti-HCV, HIV-1/2, treponemal syphilis
    are qualitative); DESIGN.md (CD19 positive: a qualitative positive). "equivocal" counts as
    positive: ``EQUIVOCAL_COUNTS_AS_POSITIVE`` (ASSUMPTION).

    Args:
        value: a lab result value.

    Returns:
        True for "positive" (and "equivocal"), False for "negative".

    Raises:
        ValueError: the value is not a qualitative result (a number, a titre).
    """
    if value == "positive":
        return True
    if value == "negative":
        return False
    if value == "equivocal":
        return EQUIVOCAL_COUNTS_AS_POSITIVE
    raise ValueError(f"not a qualitative result: {value!r} (expected one of {', '.join(QUALITATIVE_RESULTS)})")


COCKCROFT_GAULT_FEMALE_FACTOR: Final = 0.85
"""Cockcroft–Gault: creatinine clearance of a woman is 0.85 × a man's (Cockcroft & Gault,
Nephron 1976;16:31–41; clinical.md, "Cockcroft–Gault creatinine clearance")."""


def cockcroft_gault_crcl(age_years: int, weight_kg: float, sex: str, creatinine_mg_dl: float) -> float:
    """Cockcroft–Gault creatinine clearance: (140 − age) × weight / (72 × creatinine), × 0.85 if female.

    Source: clinical.md, "Cockcroft–Gault creatinine clearance" (Cockcroft & Gault, Nephron
    1976;16:31–41). Not normalised to body surface: the unit is mL/min. Worked values: a man of
    40 years, 70 kg, creatinine 1.0 mg/dL → 97.2; a woman of the same → 82.6; a woman of 65,
    60 kg, 0.9 mg/dL → 59.0. Computed on the decimals, rounded once.

    Args:
        age_years: completed years of age.
        weight_kg: body weight in kg.
        sex: "F" or "M".
        creatinine_mg_dl: serum creatinine in mg/dL (``creatinine_mg_dl`` converts µmol/L).

    Returns:
        Creatinine clearance in mL/min, unrounded.

    Raises:
        ValueError: weight or creatinine is not above zero, an age outside 0..139, or a sex other than F or M.
    """
    if weight_kg <= 0:
        raise ValueError(f"weight must be above zero (got {weight_kg} kg)")
    if creatinine_mg_dl <= 0:
        raise ValueError(f"creatinine must be above zero (got {creatinine_mg_dl} mg/dL)")
    if not 0 <= age_years < 140:
        raise ValueError(f"the Cockcroft–Gault formula needs an age of 0..139 years (got {age_years})")
    if sex not in ("F", "M"):
        raise ValueError(f"sex must be 'F' or 'M' (got {sex!r})")
    clearance = (140 - age_years) * as_decimal(weight_kg) / (72 * as_decimal(creatinine_mg_dl))
    if sex == "F":
        clearance *= as_decimal(COCKCROFT_GAULT_FEMALE_FACTOR)
    return float(clearance)


def ckd_epi_2021_egfr(age_years: int, sex: str, creatinine_mg_dl: float) -> float:
    """CKD-EPI 2021 creatinine equation (without race), for adults.

    eGFR = 142 × min(Scr/κ, 1)^α × max(Scr/κ, 1)^−1.200 × 0.9938^age × 1.012 [female], with
    κ = 0.7 (F) or 0.9 (M) and α = −0.241 (F) or −0.302 (M).

    Source: clinical.md, "CKD-EPI 2021 eGFR" (Inker et al., N Engl J Med 2021;385:1737–1749).
    Worked values: a man of 40 years, creatinine 1.0 mg/dL → 97.6; a woman of 40, 0.7 mg/dL →
    112.1; a woman of 60, 1.2 mg/dL → 51.8. Powers are irrational: computed in floating point.

    Args:
        age_years: completed years of age (the equation is for 18 and over).
        sex: "F" or "M".
        creatinine_mg_dl: serum creatinine in mg/dL.

    Returns:
        eGFR in mL/min/1.73 m², unrounded.

    Raises:
        ValueError: creatinine not above zero, an age below 18, or a sex other than F or M.
    """
    if creatinine_mg_dl <= 0:
        raise ValueError(f"creatinine must be above zero (got {creatinine_mg_dl} mg/dL)")
    if age_years < 18:
        raise ValueError(f"CKD-EPI 2021 is an adult equation (got age {age_years}); use schwartz_egfr for children")
    if sex not in ("F", "M"):
        raise ValueError(f"sex must be 'F' or 'M' (got {sex!r})")
    kappa, alpha = (0.7, -0.241) if sex == "F" else (0.9, -0.302)
    ratio = creatinine_mg_dl / kappa
    egfr: float = 142 * min(ratio, 1) ** alpha * max(ratio, 1) ** -1.200 * 0.9938**age_years
    return egfr * 1.012 if sex == "F" else egfr
