"""HL7 v2 acknowledgments: the ``ERR`` problems of a message and the ACK that reports them (built
by hand from the received MSH, so that even a message hl7apy cannot parse gets an answer)."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from dataclasses import dataclass
from typing import Literal

ENCODING = "^~\\&"

ERROR_TEXT = {
    0: "Message accepted",
    100: "Segment sequence error",
    101: "Required field missing",
    102: "Data type error",
    103: "Table value not found",
    200: "Unsupported message type",
    203: "Unsupported version id",
    207: "Application internal error",
}


@dataclass(frozen=True)
class Hl7Error:
    """One problem, as an ``ERR`` segment reports it.

    Attributes:
        segment: the segment id (``OBX``).
        sequence: which occurrence of that segment in the message, from 1.
        field: the field position (``6`` for OBX-6), or None for the whole segment.
        message: what is wrong, for the sender (ERR-8).
        code: the HL7 table 0357 condition code (ERR-3).
        severity: ``E`` error, ``W`` warning (a held result), ``I`` information.
        reject: True when the message as a whole is refused (AR rather than AE).
    """

    segment: str
    sequence: int
    field: int | None
    message: str
    code: int = 102
    severity: Literal["E", "W", "I"] = "E"
    reject: bool = False


def ack(
    message: str,
    code: str,
    errors: list[Hl7Error],
    *,
    now: dt.datetime | None = None,
    control_id: str | None = None,
) -> str:
    """Build the ACK of a message (original acknowledgment mode), even of one that did not parse.

    Args:
        message: the message acknowledged; its MSH is read field by field, as far as it goes.
        code: MSA-1, ``AA``, ``AE`` or ``AR``.
        errors: one ``ERR`` segment each: ERR-2 location, ERR-3 table 0357 code, ERR-4
            severity, ERR-8 the problem in words.
        now: MSH-7; the current time when None.
        control_id: MSH-10 of the ACK; a fresh one when None.

    Returns:
        The ACK, segments separated by CR.
    """
    msh = _msh_fields(message) or {}
    stamp = (now or dt.datetime.now(dt.UTC)).strftime("%Y%m%d%H%M%S%z")
    trigger = _safe(msh.get(9, "").split("^")[1] if "^" in msh.get(9, "") else "R01")
    header = [
        "MSH",
        ENCODING,
        _safe(_first(msh.get(5, ""))) or "TRIALGUARD",
        _safe(_first(msh.get(6, ""))),
        _safe(_first(msh.get(3, ""))),
        _safe(_first(msh.get(4, ""))),
        stamp,
        "",
        f"ACK^{trigger}^ACK",
        control_id or uuid.uuid4().hex[:20],
        _safe(_first(msh.get(11, ""))) or "P",
        "2.5.1",
    ]
    segments = ["|".join(header), f"MSA|{code}|{_safe(msh.get(10, ''))}"]
    for e in errors:
        location = f"{e.segment}^{e.sequence}" + (f"^{e.field}" if e.field is not None else "")
        condition = f"{e.code}^{ERROR_TEXT.get(e.code, 'Error')}^HL70357"
        segments.append(f"ERR||{location}|{condition}|{e.severity}||||{_escape(e.message)}")
    return "\r".join(segments)


def _msh_fields(message: str) -> dict[int, str] | None:
    """MSH fields by position (MSH-1 is the field separator itself), or None without an MSH."""
    if not message.startswith("MSH|"):
        return None
    first = re.split(r"[\r\n]", message, maxsplit=1)[0]
    parts = first.split("|")
    return {1: "|"} | {i + 1: part for i, part in enumerate(parts) if i >= 1}


def _first(value: str) -> str:
    return value.split("~")[0].split("^")[0]


def _safe(value: str) -> str:
    """A value copied into the ACK: no delimiter, no segment break, bounded."""
    return re.sub(r"[|^~\\&\r\n]", "", value)[:180]


def _escape(text: str) -> str:
    text = text.replace("\\", "\\E\\").replace("|", "\\F\\").replace("^", "\\S\\")
    text = text.replace("&", "\\T\\").replace("~", "\\R\\")
    return re.sub(r"[\r\n]", " ", text)[:500]
