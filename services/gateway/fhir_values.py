"""Values of FHIR Observations: quantities in UCUM, qualitative results, reference ranges, and the
problems found while reading them (each named by the FHIRPath of what is wrong). Pure."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from fhir.resources.R4B.codeableconcept import CodeableConcept
from fhir.resources.R4B.observation import Observation

from contracts import units as unit_table
from contracts.limits import clip, printable

UCUM_SYSTEM = "http://unitsofmeasure.org"

SNOMED_SYSTEM = "http://snomed.info/sct"

# Coded qualitative answers: SNOMED CT and LOINC answer codes for the contract's three results.
_CODED_RESULTS = {
    (SNOMED_SYSTEM, "10828004"): "positive",
    (SNOMED_SYSTEM, "260385009"): "negative",
    (SNOMED_SYSTEM, "42425007"): "equivocal",
    (SNOMED_SYSTEM, "260373001"): "positive",
    (SNOMED_SYSTEM, "260415000"): "negative",
    ("http://loinc.org", "LA6576-8"): "positive",
    ("http://loinc.org", "LA6577-6"): "negative",
}

_WORDS = {"positive": "positive", "negative": "negative", "equivocal": "equivocal"}
# "Detected"/"not detected" are how viral loads and presence tests are answered (contracts/units.py).
_WORDS |= {"detected": "positive", "not detected": "negative"}


@dataclass(frozen=True)
class Problem:
    """Why (part of) a request cannot be published.

    Attributes:
        expression: the FHIRPath of the problem, e.g. ``Bundle.entry[2].resource.valueQuantity.code``.
        diagnostics: what is wrong, for the sender.
        code: the FHIR issue type (``structure``, ``required``, ``value``, ``code-invalid``,
            ``not-supported``, ``invariant``).
        parse: True when the input is not a valid FHIR resource at all (HTTP 400, not 422).
    """

    expression: str
    diagnostics: str
    code: str = "value"
    parse: bool = False


def _value(obs: Observation, path: str, loinc: str | None, problems: list[Problem]) -> tuple[Any, str | None]:
    if (q := obs.valueQuantity) is not None:
        where = f"{path}.valueQuantity"
        if q.value is None:
            problems.append(Problem(f"{where}.value", "missing", "required"))
        if q.code is not None and q.system != UCUM_SYSTEM:
            problems.append(Problem(f"{where}.system", f"units must be UCUM ({UCUM_SYSTEM})", "code-invalid"))
        unit = q.code
        if loinc is not None and q.value is not None:
            try:
                unit_table.check_unit(loinc, float(q.value), unit)
            except unit_table.UnknownUnitError as e:
                display = f" (display {q.unit!r})" if q.unit and q.code is None else ""
                problems.append(Problem(f"{where}.code", f"{e}{display}", "code-invalid"))
        return (_number(q.value), unit)
    if obs.valueString is not None:
        return _qualitative(obs.valueString, f"{path}.valueString", problems), None
    if (concept := obs.valueCodeableConcept) is not None:
        return _coded(concept, f"{path}.valueCodeableConcept", problems), None
    if (ratio := obs.valueRatio) is not None:
        # A titre as a ratio, 1:160.
        num = ratio.numerator.value if ratio.numerator else None
        den = ratio.denominator.value if ratio.denominator else None
        if num == 1 and den is not None and den == int(den) and den >= 1:
            return f"1:{int(den)}", None
        problems.append(Problem(f"{path}.valueRatio", "only a titre 1:N is read from a ratio", "value"))
        return None, None
    problems.append(
        Problem(f"{path}.value[x]", "expected valueQuantity, valueString or valueCodeableConcept", "required")
    )
    return None, None


def qualitative_result(text: str) -> str | None:
    """The contract's spelling of a qualitative result or titre written by a lab, or None.

    ``Positive``, ``NEGATIVE``, ``equivocal``, ``Detected``/``Not detected`` (viral loads and
    presence tests) and titres ``1:N`` are read; anything else is not guessed at.
    """
    word = " ".join(text.strip().lower().split())
    if word in _WORDS:
        return _WORDS[word]
    if word.startswith("1:") and word[2:].isdigit() and not word[2:].startswith("0"):
        return word
    return None


def _qualitative(text: str, where: str, problems: list[Problem]) -> str | None:
    if (result := qualitative_result(text)) is not None:
        return result
    expected = "expected positive, negative, equivocal or a titre such as 1:160"
    problems.append(Problem(where, f"{_quote(text)} is not a result: {expected}"))
    return None


def _coded(concept: CodeableConcept, where: str, problems: list[Problem]) -> str | None:
    for coding in concept.coding or []:
        if (result := _CODED_RESULTS.get((str(coding.system), str(coding.code)))) is not None:
            return result
    if concept.text:
        return _qualitative(concept.text, f"{where}.text", problems)
    problems.append(
        Problem(f"{where}.coding", "no coding of positive, negative or equivocal (SNOMED CT)", "code-invalid")
    )
    return None


def _range(obs: Observation, path: str, unit: str | None, problems: list[Problem]) -> tuple[Any, Any]:
    if not obs.referenceRange:
        return None, None
    first = obs.referenceRange[0]
    bounds: list[float | None] = []
    for name, quantity in (("high", first.high), ("low", first.low)):
        if quantity is None or quantity.value is None:
            bounds.append(None)
            continue
        if quantity.code is not None and unit is not None and quantity.code != unit:
            where = f"{path}.referenceRange[0].{name}.code"
            problems.append(Problem(where, f"unit {quantity.code!r} differs from the result's {unit!r}", "value"))
        bounds.append(_number(quantity.value))
    return bounds[0], bounds[1]


def _number(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def _quote(value: Any) -> str:
    return repr(printable(clip(str(value), 60))) if value is not None else "nothing"
