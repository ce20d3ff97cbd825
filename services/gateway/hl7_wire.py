"""HL7 v2 as it arrives: bytes in the character set MSH-18 names, a byte-order mark before MSH,
segments ended by CR, LF or CRLF, and batches (``FHS``/``BHS`` … ``BTS``/``FTS``) of messages that
are each acknowledged on their own. Pure: no I/O.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

from services.gateway.hl7_values import readable

BOM = "\ufeff"
ENCODING_CHARACTERS = ("^~\\&", "^~\\&#")
"""MSH-2: component, repetition, escape and subcomponent, and since v2.7 maybe the truncation
character. Other delimiters are refused: every reader here splits on these."""

CHARSETS = {
    "": None,  # not named: UTF-8 (ASCII is a subset); anything else is refused with its byte offset
    "UNICODE UTF-8": "utf-8",
    "UTF-8": "utf-8",
    "UNICODE": "utf-8",  # table 0211 names no encoding form; analyzers that send it (Mindray) write UTF-8
    "ASCII": "ascii",
    "8859/1": "latin-1",
    "8859/2": "iso8859-2",
    "8859/5": "iso8859-5",
    "8859/7": "iso8859-7",
    "8859/9": "iso8859-9",
    "8859/15": "iso8859-15",
    "ISO IR100": "latin-1",
    "GB 18030-2000": "gb18030",
}
"""MSH-18 (HL7 table 0211) → the Python codec it means."""

_BATCH_HEADERS = ("FHS", "BHS")
_BATCH_TRAILERS = ("BTS", "FTS")


class WireError(ValueError):
    """Bytes that are not an HL7 v2 message the gateway can read; the message says why."""


@dataclass(frozen=True)
class Batch:
    """The messages of what arrived, and whether they came in a batch (then the answer is one)."""

    messages: tuple[str, ...]
    batch: bool = False


def decode(body: bytes) -> str:
    """The text of a message or batch, decoded as its MSH-18 says (UTF-8 when it names none).

    Raises:
        WireError: a character set the gateway does not read, or bytes that are not in it,
            naming the byte offset.
    """
    if body.startswith(codecs.BOM_UTF8):
        body = body[len(codecs.BOM_UTF8) :]
    named = _charset(body)
    if named not in CHARSETS:
        known = ", ".join(k for k in CHARSETS if k)
        raise WireError(f"MSH-18 character set {readable(named)} is not read here; known: {known}")
    codec = CHARSETS[named] or "utf-8"
    try:
        return body.decode(codec)
    except UnicodeDecodeError as e:
        said = f"MSH-18 says {named}" if named else "MSH-18 names no character set, so UTF-8"
        raise WireError(f"not {codec.upper()} at byte {e.start} ({said})") from None


def _charset(body: bytes) -> str:
    """MSH-18 of the first MSH in ``body`` (read as ASCII: the header's values are)."""
    start = body.find(b"MSH")
    if start < 0:
        return ""
    line = re.split(rb"[\r\n]", body[start:], maxsplit=1)[0].decode("ascii", "replace")
    fields = line.split(line[3:4] or "|")
    return fields[17].split("~")[0].split("^")[0].strip().upper() if len(fields) > 17 else ""


def split(text: str) -> Batch:
    """The messages in ``text``: one, or each ``MSH`` of a batch (its header and trailer dropped;
    messages one after the other without them, as in a file, are read as a batch too).

    Segments come out separated by CR; a byte-order mark and blank lines are dropped.
    """
    text = text.lstrip(BOM).replace("\r\n", "\r").replace("\n", "\r")
    segments = [s for s in text.split("\r") if s.strip()]
    if not segments or not (segments[0].startswith(_BATCH_HEADERS) or sum(s.startswith("MSH") for s in segments) > 1):
        return Batch(("\r".join(segments),))
    messages: list[list[str]] = []
    for segment in segments:
        if segment.startswith(_BATCH_HEADERS + _BATCH_TRAILERS):
            continue
        if segment.startswith("MSH") or not messages:
            messages.append([])
        messages[-1].append(segment)
    return Batch(tuple("\r".join(m) for m in messages), batch=True)


def batch_ack(acks: list[str], received: str) -> str:
    """One answer to a batch: ``BHS``, the ACK of each message in order, ``BTS`` with their count."""
    header = next((s for s in received.lstrip(BOM).replace("\n", "\r").split("\r") if s.startswith("BHS")), "")
    control = re.sub(r"[|^~\\&\r\n]", "", header.split("|")[10] if header.count("|") >= 10 else "")[:20]
    segments = ["BHS|^~\\&|TRIALGUARD" + (f"|||||||||{control}" if control else ""), *acks, f"BTS|{len(acks)}"]
    return "\r".join(segments)


def check_encoding_characters(msh2: str) -> str | None:
    """Why MSH-2 cannot be read, or None when it is one of :data:`ENCODING_CHARACTERS`."""
    if msh2 in ENCODING_CHARACTERS:
        return None
    return (
        f"MSH-2 encoding characters {readable(msh2, 8)}: expected component, repetition, escape and "
        "subcomponent as caret, tilde, backslash, ampersand (and, from v2.7, the truncation character #)"
    )
