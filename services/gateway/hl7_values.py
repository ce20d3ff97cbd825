"""OBX values, units, reference ranges and HL7 times as laboratories write them, read into what the
contract takes. Pure: no I/O.

Each reader returns what it read or raises :class:`FieldError` naming the field (its position in
the segment) and the problem in words. Quoted input is written with delimiter characters named
(:func:`readable`), so that an ACK's ``ERR-8`` reads as plain text rather than escape sequences.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Literal

from services.gateway.fhir_values import qualitative_result
from services.gateway.local_time import LocalTimeError, localize, start_of_day

Comparator = Literal["<", "<=", ">=", ">"]

_SNOMED = {"10828004": "positive", "260385009": "negative", "42425007": "equivocal"}
_SNOMED |= {"260373001": "positive", "260415000": "negative"}
_SEROLOGY = {"reactive": "positive", "non-reactive": "negative", "nonreactive": "negative", "non reactive": "negative"}
"""Screening serology (HBsAg, anti-HCV, HIV) as US laboratories word it: reactive is positive."""
_NUM = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)"
_NUMBER = re.compile(rf"^\s*({_NUM})\s*$")
_BOUND = re.compile(rf"^\s*(<=|>=|<|>|≤|≥)\s*({_NUM})\s*$")
_COMPARATORS: dict[str, Comparator] = {"<": "<", "<=": "<=", "≤": "<=", ">": ">", ">=": ">=", "≥": ">="}
_TS = re.compile(r"^(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2}(?:\.\d{1,4})?)?([+-]\d{4})?$")
_RANGE = re.compile(rf"^\s*({_NUM})\s*(?:-|–|to|TO|To)\s*({_NUM})\s*(\S.*)?$")
_RANGE_BOUND = re.compile(rf"^\s*(<=|>=|<|>|≤|≥)\s*({_NUM})\s*(\S.*)?$")
_DELIMITERS = {"|": " [field] ", "^": " [component] ", "~": " [repetition] ", "&": " [subcomponent] "}
_DELIMITERS |= {"\\": " [escape] ", "\r": " ", "\n": " "}
QUALITATIVE_TYPES = ("ST", "TX", "FT")
CODED_TYPES = ("CE", "CWE", "CNE")
VALUE_TYPES = ("NM", "SN", *QUALITATIVE_TYPES, *CODED_TYPES)


class FieldError(ValueError):
    """A field that cannot be read.

    Attributes:
        field: its position in the segment (5 for OBX-5).
        code: the HL7 table 0357 condition code for the ERR segment.
    """

    def __init__(self, field: int, message: str, code: int = 102) -> None:
        super().__init__(message)
        self.field, self.code = field, code


@dataclass(frozen=True)
class Value:
    """An OBX-5 read: a number (with its comparator when it is a bound), or a qualitative result."""

    value: float | str
    comparator: Comparator | None = None


@dataclass(frozen=True)
class Range:
    """An OBX-7 read: its upper and lower limits, or a note saying why it was left out."""

    uln: float | None = None
    lln: float | None = None
    note: str | None = None


def readable(value: str, limit: int = 40) -> str:
    """``value`` quoted, delimiter characters named, so that no escape sequence hides it in an ACK."""
    text = value[:limit] + ("…" if len(value) > limit else "")
    return "'" + "".join(_DELIMITERS.get(c, c) for c in text) + "'"


def components(field: str, count: int) -> list[str]:
    """The first repetition of a field split into at least ``count`` components."""
    return (field.split("~")[0].split("^") + [""] * count)[: max(count, field.count("^") + 1)]


def obx_value(kind: str, field: str) -> Value:
    """OBX-5 read according to OBX-2.

    NM is a number; a number written as a bound (``<0.5``, ``>1000``), in NM or ST as some labs
    do, keeps its comparator. SN is ``comparator^number`` or ``^1^:^N`` (a titre). ST, TX and FT
    are positive, negative or equivocal in words, or a number; CE, CWE and CNE a SNOMED code or
    such words.

    Raises:
        FieldError: on OBX-2 (a type not read) or OBX-5 (a value that is none of these).
    """
    if kind not in VALUE_TYPES:
        raise FieldError(2, f"value type {readable(kind) if kind else 'missing'}: expected NM, SN, ST or CE", 103)
    text = field.split("~")[0]
    if kind in ("NM", *QUALITATIVE_TYPES) and (number := _number(text)) is not None:
        return number
    if kind in QUALITATIVE_TYPES and (result := _qualitative(text)) is not None:
        return Value(result)
    if kind in CODED_TYPES:
        code, words, system = components(text, 3)[:3]
        coded = _SNOMED.get(code) if system in ("SCT", "SNM", "SNOMED CT", "SNM3") else None
        if (result := coded or _qualitative(words) or _qualitative(code)) is not None:
            return Value(result)
    if kind == "SN" and (sn := _structured_numeric(text)) is not None:
        return sn
    what = "a number" if kind == "NM" else "positive, negative, equivocal, a number or a titre 1:N"
    raise FieldError(5, f"{readable(text)} is not {what}")


def _qualitative(text: str) -> str | None:
    return qualitative_result(text) or _SEROLOGY.get(" ".join(text.strip().lower().split()))


def _number(text: str) -> Value | None:
    if (match := _NUMBER.match(text)) is not None:
        return Value(float(match.group(1)))
    if (match := _BOUND.match(text)) is not None:
        return Value(float(match.group(2)), _COMPARATORS[match.group(1)])
    return None


def _structured_numeric(text: str) -> Value | None:
    """SN: ``[comparator]^number[^separator^number]``; a ratio is read as a titre ``1:N`` only."""
    comparator, first, separator, second = components(text, 4)[:4]
    if not comparator and first == "1" and separator == ":" and second.isdigit() and int(second) > 0:
        return Value(f"1:{int(second)}")
    if separator or second or _NUMBER.match(first) is None:
        return None
    if not comparator or comparator == "=":
        return Value(float(first))
    if comparator in _COMPARATORS:
        return Value(float(first), _COMPARATORS[comparator])
    return None


def obx_unit(field: str) -> str | None:
    """OBX-6: the unit's code (else its text). Its coding system is not judged here: the unit
    table accepts a unit or names the ones it knows (UCUM spellings)."""
    code, text = components(field, 2)[:2]
    return code.strip() or text.strip() or None


def reference_range(field: str, unit: str | None) -> Range:
    """OBX-7: ``low-high``, ``low to high``, ``<high``, ``>low`` (``<=``, ``>=`` too), optionally
    followed by the result's unit. Any other text (``negative``, ``see report``, a range in
    another unit) is left out with a note: it is the lab's reading aid, not the result.
    """
    text = field.split("~")[0].split("^")[0]
    if not text.strip():
        return Range()
    if (match := _RANGE.match(text)) is not None and _same_unit(match.group(3), unit):
        return Range(uln=float(match.group(2)), lln=float(match.group(1)))
    if (match := _RANGE_BOUND.match(text)) is not None and _same_unit(match.group(3), unit):
        bound = float(match.group(2))
        return Range(uln=bound) if match.group(1) in ("<", "<=", "≤") else Range(lln=bound)
    return Range(note=f"reference range {readable(text)} is not low-high, <high or >low in the result's unit: left out")


def _same_unit(written: str | None, unit: str | None) -> bool:
    return written is None or (unit is not None and written.strip().casefold() == unit.casefold())


def timestamp(value: str, zone: str | None) -> dt.datetime:
    """An HL7 TS/DTM (``YYYYMMDD[HH[MM[SS[.S]]]][+/-ZZZZ]``) as an aware time.

    With a UTC offset it is taken as written; without, it is read in the source's time zone
    (``zone``); a date-only time is the start of that local date.

    Raises:
        ValueError: not a time precise to the day, or a local time that cannot be placed (no zone,
            or one the clocks skip or repeat), saying why.
    """
    text = value.split("^")[0].strip()
    match = _TS.match(text)
    if match is None or match.group(3) is None:
        raise ValueError(f"{readable(text)} is not an HL7 time precise to the day (YYYYMMDD[HHMM[SS]][+/-ZZZZ])")
    year, month, day, hour, minute, seconds, offset = match.groups()
    zone_of_offset = None
    if offset is not None:
        sign = -1 if offset[0] == "-" else 1
        zone_of_offset = dt.timezone(sign * dt.timedelta(hours=int(offset[1:3]), minutes=int(offset[3:])))
    try:
        if hour is None:
            day_of = dt.date(int(year), int(month), int(day))
            if zone_of_offset is not None:
                return dt.datetime.combine(day_of, dt.time(), zone_of_offset)
            return start_of_day(day_of, zone)
        second = float(seconds or 0)
        when = dt.datetime(
            int(year), int(month), int(day), int(hour), int(minute or 0), int(second), tzinfo=zone_of_offset
        )
        when += dt.timedelta(microseconds=round(second % 1 * 1e6))
    except LocalTimeError as e:
        raise ValueError(f"{readable(text)} {e}") from None
    except ValueError:
        raise ValueError(f"{readable(text)} is not a date and time") from None
    if zone_of_offset is not None:
        return when
    try:
        return localize(when, zone)
    except LocalTimeError as e:
        raise ValueError(f"{readable(text)} {e}") from None
