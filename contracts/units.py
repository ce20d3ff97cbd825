"""The LOINC-coded screening analytes, the results and UCUM units each accepts, and the
conversion of a number to the analyte's canonical unit (the unit the protocol criterion is
written in).

Source: docs/clinical-reference.md, "LOINC codes and UCUM units for the screening labs" and its
"Conversions" paragraph. A unit listed for an analyte is taken as written; a few common non-UCUM
spellings (``IU/L``, ``sec``) are listed. Any other unit is recognized through a maintained UCUM
implementation (ucumvert, on pint) when it is the very same unit as a listed one: ``{cells}/uL``
is ``/uL`` (UCUM annotations change nothing), ``/nL`` is ``10*9/L``. Arbitrary units (``[IU]``)
are only ever the same as themselves: international units and copies do not convert. The library
only recognizes: the number is converted by the listed unit's exact factor, so that evidence
values stay the very same floats.

Conversions are exact rationals (``Fraction``) applied to the decimal a number is written as,
so that a result is rounded once, at the end: 88.4 umol/L of creatinine is exactly 1.0 mg/dL,
6.0 g/dL of hemoglobin exactly 60.0 g/L.

Pure: no I/O, imports nothing of ours but ``contracts.unit_caches``.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from types import MappingProxyType
from typing import Any

from contracts.unit_caches import BoundedCaches

QUALITATIVE_RESULTS = ("positive", "negative", "equivocal")
"""The qualitative results the wire contract allows as a lab ``value``."""

_TITRE = re.compile(r"^1:([1-9]\d*)$")


class LabResultError(ValueError):
    """A lab result that cannot be right for its LOINC code (a unit or a kind of value)."""


class UnknownUnitError(LabResultError):
    """A unit that is not known for the analyte of a LOINC code (or a missing unit)."""


class ResultKindError(LabResultError):
    """A value of the wrong kind for the analyte: a number for an ordinal test, a titre for a
    concentration, "positive" for a count."""


class UnknownAnalyteError(LookupError):
    """A LOINC code that is not in the unit table."""


@dataclass(frozen=True)
class Analyte:
    """One row of the unit table.

    Attributes:
        name: the analyte's name in the protocol code ("creatinine"). Two rows may share a name
            when their LOINC codes have units that do not convert (HBV DNA in IU vs copies).
        loincs: the LOINC codes reported for it, the preferred first.
        canonical_unit: the unit the protocol criterion is written in; None for an ordinal
            (positive/negative) test.
        factors: each accepted unit → the factor that takes a number in that unit to the
            canonical unit. Empty when the analyte takes no number.
        qualitative: the qualitative results (``positive``, ``negative``, ``equivocal``) that
            are a valid answer for it.
        titre: whether a titre string such as ``1:160`` is a valid answer.
        unit_optional: whether a number may come without a unit (dimensionless quantities,
            where a missing unit cannot be misread): then it is taken in the canonical unit.
    """

    name: str
    loincs: tuple[str, ...]
    canonical_unit: str | None
    factors: Mapping[str, Fraction] = field(hash=False)
    qualitative: frozenset[str] = frozenset()
    titre: bool = False
    unit_optional: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "factors", MappingProxyType(dict(self.factors)))

    @property
    def numeric(self) -> bool:
        """Whether a number is a valid answer."""
        return bool(self.factors)

    @property
    def units(self) -> tuple[str, ...]:
        """The accepted units, the canonical one first."""
        return tuple(self.factors)


def _times(factor: str) -> Fraction:
    return Fraction(factor)


def _per(divisor: str) -> Fraction:
    return 1 / Fraction(divisor)


_ONE = Fraction(1)
_ALL_QUALITATIVE = frozenset(QUALITATIVE_RESULTS)

# 10*9/L = 10*3/uL = 1000/uL; 1 mm3 = 1 uL; 10*6/L = 1/uL.
_CELLS_PER_NL = {
    "10*9/L": _ONE,
    "10*3/uL": _ONE,
    "/uL": _per("1000"),
    "/mm3": _per("1000"),
    "10*6/L": _per("1000"),
}
_ENZYME = {"U/L": _ONE, "IU/L": _ONE, "[IU]/L": _ONE}

ANALYTES: tuple[Analyte, ...] = (
    # Cell counts: criteria in 10*9/L (Inclusion 9: lymphocytes, WBC, neutrophils).
    Analyte("lymphocytes", ("731-0", "26474-7"), "10*9/L", _CELLS_PER_NL),
    Analyte("wbc", ("6690-2", "26464-8", "804-5"), "10*9/L", _CELLS_PER_NL),
    Analyte("neutrophils", ("751-8", "26499-4", "753-4"), "10*9/L", _CELLS_PER_NL),
    # Hemoglobin (20509-6: by calculation): g/L = g/dL × 10; g/dL = mmol/L × 1.61, so
    # g/L = mmol/L × 16.1 (59260-0 is the molar code; a molar unit on 718-7 converts just as
    # exactly, so it is accepted too).
    Analyte(
        "hemoglobin",
        ("718-7", "59260-0", "20509-6"),
        "g/L",
        {"g/L": _ONE, "g/dL": _times("10"), "mmol/L": _times("16.1")},
    ),
    # ALT and AST in serum or plasma, with or without pyridoxal phosphate (P-5'-P), or in blood.
    Analyte("alt", ("1742-6", "1743-4", "1744-2", "76625-3"), "U/L", _ENZYME),
    Analyte("ast", ("1920-8", "30239-8"), "U/L", _ENZYME),
    # Bilirubin umol/L = mg/dL × 17.1; creatinine umol/L = mg/dL × 88.4.
    Analyte("total_bilirubin", ("1975-2", "14631-6", "42719-5"), "mg/dL", {"mg/dL": _ONE, "umol/L": _per("17.1")}),
    Analyte("creatinine", ("2160-0", "14682-9", "38483-4"), "mg/dL", {"mg/dL": _ONE, "umol/L": _per("88.4")}),
    # INR is a dimensionless ratio: "1" is UCUM's unity, and a missing unit cannot be misread.
    Analyte(
        "inr",
        ("6301-6", "34714-6", "46418-0"),
        "{INR}",
        {"{INR}": _ONE, "{ratio}": _ONE, "1": _ONE},
        unit_optional=True,
    ),
    Analyte("pt", ("5902-2", "5964-2"), "s", {"s": _ONE, "sec": _ONE}),
    # CD19 by flow: positive as a qualitative result, or a count or percentage above zero.
    Analyte(
        "cd19_count",
        ("8116-6",),
        "/uL",
        {"/uL": _ONE, "/mm3": _ONE, "10*6/L": _ONE, "10*9/L": _times("1000"), "10*3/uL": _times("1000")},
        qualitative=_ALL_QUALITATIVE,
    ),
    Analyte("cd19_percent", ("8117-4",), "%", {"%": _ONE}, qualitative=_ALL_QUALITATIVE),
    # Urine protein/creatinine: mg/mg = g/g; 1 g/g = 113.1 mg/mmol.
    Analyte(
        "upcr",
        ("2890-2", "34366-5"),
        "mg/mg",
        {
            "mg/mg": _ONE,
            "g/g": _ONE,
            "mg/g{creat}": _per("1000"),
            "mg/g": _per("1000"),
            "mg/mmol{creat}": _per("113.1"),
            "mg/mmol": _per("113.1"),
        },
    ),
    # ANA: a titre "1:160", or the dilution 160 as a number; "negative" when below the first
    # dilution. "positive" without a titre is not an answer to a [Titer] code.
    Analyte(
        "ana",
        ("5048-4", "29953-7"),
        "{titer}",
        {"{titer}": _ONE},
        qualitative=frozenset({"negative"}),
        titre=True,
        unit_optional=True,
    ),
    # Ordinal ([Presence]) tests: positive, negative or equivocal, never a number.
    Analyte("hbsag", ("5196-1", "5195-3"), None, {}, qualitative=_ALL_QUALITATIVE),
    Analyte("anti_hbc", ("16933-4", "13952-7"), None, {}, qualitative=_ALL_QUALITATIVE),
    Analyte("anti_hcv", ("16128-1", "13955-0"), None, {}, qualitative=_ALL_QUALITATIVE),
    Analyte("hiv", ("31201-7", "56888-1"), None, {}, qualitative=_ALL_QUALITATIVE),
    Analyte("syphilis", ("24110-9", "22587-0"), None, {}, qualitative=_ALL_QUALITATIVE),
    # Viral loads (HCV RNA 11011-4 and 10676-5 by NAA, in IU): a number, or detected/not
    # detected. IU and copies do not convert by a fixed
    # factor (it depends on the assay), so each code keeps its own unit.
    Analyte("hbv_dna", ("42595-9",), "[IU]/mL", {"[IU]/mL": _ONE}, qualitative=_ALL_QUALITATIVE),
    Analyte("hbv_dna", ("29615-2",), "{copies}/mL", {"{copies}/mL": _ONE}, qualitative=_ALL_QUALITATIVE),
    Analyte("hcv_rna", ("11011-4", "10676-5"), "[IU]/mL", {"[IU]/mL": _ONE}, qualitative=_ALL_QUALITATIVE),
    Analyte("hcv_rna", ("11259-9",), None, {}, qualitative=_ALL_QUALITATIVE),
    # NCT06946485
    # Coded assessments that are not labs travel as LOINC-coded results too. LVEF (Inclusion 6,
    # cardiac function): 10230-1 Left ventricular Ejection fraction, 18043-0 the same by US; a
    # volume fraction in %. SpO2: 59408-5 Oxygen saturation in Arterial blood by Pulse oximetry,
    # in %. Pregnancy test (the safety outcome's "pregnancy tests"): hCG [Presence] in urine
    # (2106-3) and in serum or plasma (2118-8), qualitative.
    Analyte("lvef", ("10230-1", "18043-0"), "%", {"%": _ONE}),
    Analyte("spo2", ("59408-5",), "%", {"%": _ONE}),
    Analyte("hcg", ("2106-3", "2118-8"), None, {}, qualitative=_ALL_QUALITATIVE),
)
"""The unit table, one row per analyte (and unit family)."""

ANALYTES_BY_LOINC: dict[str, Analyte] = {loinc: a for a in ANALYTES for loinc in a.loincs}
"""Every LOINC code of the table → its row."""


def as_decimal(value: float) -> Fraction:
    """The exact rational of the decimal a number is written as (its shortest repr): 1.8 is
    9/5, not the binary double nearest to it. Arithmetic on these rounds once, at the end, so
    1.8 / 1.2 is exactly 1.5 and a boundary such as "≤ 1.5×ULN" holds where the lab meant it.
    """
    return Fraction(repr(value))


def analyte_for(loinc: str) -> Analyte | None:
    """The analyte of a LOINC code, or None when the code is not in the table.

    Source: clinical.md, "LOINC codes and UCUM units for the screening labs".
    """
    return ANALYTES_BY_LOINC.get(loinc)


@functools.lru_cache(maxsize=8192)  # pure; exact (rational) arithmetic is slow, and results repeat
def to_canonical(loinc: str, value: float, unit: str | None) -> float:
    """Convert a number to the canonical unit of its analyte.

    Source: clinical.md, "Conversions".

    Args:
        loinc: the result's LOINC code.
        value: the number as reported.
        unit: its UCUM unit as reported; None means no unit.

    Returns:
        The number in the analyte's ``canonical_unit``, rounded once from the exact product.

    Raises:
        UnknownAnalyteError: the LOINC code is not in the table.
        UnknownUnitError: the unit is not known for the analyte, or missing where it matters,
            or the analyte takes no number at all (an ordinal test).
    """
    analyte = ANALYTES_BY_LOINC.get(loinc)
    if analyte is None:
        raise UnknownAnalyteError(f"LOINC {loinc} is not in the unit table")
    factor = _factor(analyte, loinc, unit)
    return float(as_decimal(value) * factor)


def check_value(loinc: str, value: float | str) -> None:
    """Check that a value is a possible answer for the analyte of a LOINC code.

    A number for an ordinal test, a titre for anything but ANA, a qualitative result for a
    concentration, a negative number, or a dilution that is not a whole number ≥ 1 cannot be
    right. Codes that are not in the table are not checked.

    Source: clinical.md, "LOINC codes and UCUM units for the screening labs"; DESIGN.md (CD19
    positive: a qualitative positive, or a count or percentage above zero).

    Raises:
        ResultKindError: the value cannot be an answer for this analyte.
    """
    analyte = ANALYTES_BY_LOINC.get(loinc)
    if analyte is None:
        return
    where = f"{analyte.name} (LOINC {loinc})"
    if isinstance(value, str):
        if _TITRE.match(value):
            if not analyte.titre:
                raise ResultKindError(f"a titre such as {value!r} is not a result for {where}; {_expected(analyte)}")
        elif value not in analyte.qualitative:
            raise ResultKindError(f"{value!r} is not a result for {where}; {_expected(analyte)}")
        return
    if not analyte.numeric:
        raise ResultKindError(f"a number is not a result for {where}; {_expected(analyte)}")
    if value < 0:
        raise ResultKindError(f"{where} cannot be negative")
    if analyte.titre and (value < 1 or value != int(value)):
        raise ResultKindError(f"a titre of {where} is a whole dilution ≥ 1, such as 160")


def check_unit(loinc: str, value: float | str, unit: str | None) -> None:
    """Check that a unit is known for the analyte of a LOINC code, given the value it goes with.

    A number needs one of the analyte's units (or none, for a dimensionless analyte); a titre
    or a qualitative result may come without a unit or with one of the analyte's units. Codes
    that are not in the table are not checked.

    Source: clinical.md, "LOINC codes and UCUM units for the screening labs".

    Raises:
        UnknownUnitError: the message names the unit, the analyte and the units expected.
    """
    analyte = ANALYTES_BY_LOINC.get(loinc)
    if analyte is None:
        return
    if isinstance(value, str):
        if unit is not None and unit not in analyte.factors and not _listed_as(analyte, unit):
            raise UnknownUnitError(_unknown_unit(analyte, loinc, unit))
        return
    _factor(analyte, loinc, unit)


def _factor(analyte: Analyte, loinc: str, unit: str | None) -> Fraction:
    if unit is None and analyte.unit_optional and analyte.canonical_unit is not None:
        unit = analyte.canonical_unit
    factor = None if unit is None else analyte.factors.get(unit) or analyte.factors.get(_listed_as(analyte, unit))
    if factor is None:
        raise UnknownUnitError(_unknown_unit(analyte, loinc, unit))
    return factor


def _listed_as(analyte: Analyte, unit: str) -> str:
    """The listed unit of the analyte that ``unit`` is the very same UCUM unit as, or ``""``."""
    return next((listed for listed in analyte.factors if same_unit(unit, listed)), "")


_ARBITRARY = re.compile(r"\[[^\]]*\]")
_ANNOTATION = re.compile(r"\{[^}]*\}")


@functools.lru_cache(maxsize=4096)
def same_unit(a: str, b: str) -> bool:
    """Whether two UCUM unit codes are the same unit: equal up to annotations and spelling, as
    UCUM (through ucumvert) says, with a ratio of exactly 1 between them.

    ``{cells}/uL`` is ``/uL``, ``/nL`` is ``10*9/L``, ``mg/dl`` is ``mg/dL`` (UCUM has both
    litres); ``[IU]/mL`` is not ``{copies}/mL``, nor ``%`` ``1``. A code UCUM cannot read is the
    same as nothing but itself.
    """
    if a == b:
        return True
    if sorted(_ARBITRARY.findall(a)) != sorted(_ARBITRARY.findall(b)):
        return False  # arbitrary units ([IU], [arb'U]) have no dimension to compare: by name only
    qa, qb = _ucum(_ANNOTATION.sub("", a) or "1"), _ucum(_ANNOTATION.sub("", b) or "1")
    if qa is None or qb is None:
        return False
    try:
        ratio = (qa / qb).to_base_units()
    except Exception:  # pint's errors have no common base; a failed conversion is "not the same"
        return False
    finally:
        _bound_pint_caches()  # units come from the wire: pint's own caches stay bounded
    # A ratio of 1 up to floating point (10*9/L over /nL is 0.9999999999999999 in pint).
    return bool(ratio.dimensionless) and math.isclose(float(ratio.magnitude), 1.0, rel_tol=1e-9)


@functools.lru_cache(maxsize=4096)
def _ucum(code: str) -> Any:
    """The pint quantity of a UCUM code, or None when UCUM cannot read it."""
    try:
        quantity = _registry().from_ucum(code)
    except Exception:  # lark's and pint's parse errors: not a UCUM code
        return None
    finally:
        _bound_pint_caches()
    return quantity if hasattr(quantity, "to_base_units") else None


@functools.cache
def _registry() -> Any:
    # Imported when a unit is not listed: building the registry takes about a second.
    from ucumvert import PintUcumRegistry  # type: ignore[import-untyped,unused-ignore]

    return PintUcumRegistry()


@functools.cache
def _pint_caches() -> BoundedCaches:
    """The caches of the registry that ucumvert makes its quantities in (pint's application
    registry, not the ``PintUcumRegistry``), as they are now (``contracts.unit_caches``)."""
    return BoundedCaches(_registry().from_ucum("m")._REGISTRY._cache)


def _bound_pint_caches() -> None:
    """Set pint's caches back when units have grown them past their bound (once the registry is
    made: a registry that failed to build is left to fail as before)."""
    if _registry.cache_info().currsize:
        _pint_caches().check()


def _unknown_unit(analyte: Analyte, loinc: str, unit: str | None) -> str:
    where = f"{analyte.name} (LOINC {loinc})"
    if not analyte.numeric:
        return f"unit {unit!r} is not known for {where}; it takes no unit (a qualitative result)"
    said = "no unit is given" if unit is None else f"unit {unit!r} is not known"
    return f"{said} for {where}; expected one of: {', '.join(analyte.units)}"


def _expected(analyte: Analyte) -> str:
    kinds = []
    if analyte.numeric:
        kinds.append(f"a number in {' or '.join(analyte.units)}")
    if analyte.titre:
        kinds.append("a titre such as 1:160")
    kinds += [repr(q) for q in QUALITATIVE_RESULTS if q in analyte.qualitative]
    return "expected " + ", ".join(kinds[:-1]) + (" or " if len(kinds) > 1 else "") + kinds[-1]
