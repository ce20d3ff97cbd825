"""Bounds on what the wire contract accepts, and on what its errors may repeat of the input.

Every record on the participant-events topic ends as processed or dead-lettered, whatever its
bytes. These bounds keep a hostile or broken record from costing more than a real one to reject
(no unbounded recursion, no megabyte-long error reasons) and from reaching the protocol's date and
number arithmetic with values no participant can have.

Pure: no I/O, no clock.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Final

MAX_EVENT_BYTES: Final = 65_536
"""The largest message accepted, in bytes of UTF-8 (64 KiB). A real contract-v1 event is well under
2 KB, even with a long medication history. The dead-letter copy of a rejected record carries the
original bytes plus headers, and must stay well under the broker's default ``message.max.bytes``
(about 1 MiB) whatever the input."""

MAX_NESTING_DEPTH: Final = 8
"""The deepest nesting of JSON arrays and objects accepted. The deepest path of contract v1 is
envelope → payload → immunosuppressants list → treatment object, 4 levels; 8 leaves room for
optional fields, and keeps a recursive parser far from any recursion limit."""

MAX_REASON_CHARS: Final = 1_000
"""The longest text of a ``ContractError`` (the dead-letter reason header)."""

MAX_VIOLATIONS_SHOWN: Final = 10
"""Violations spelled out in an error's text and summary; the rest are counted ("and 3 more")."""

MAX_QUOTE_CHARS: Final = 60
"""The longest excerpt of an input value that a violation's problem quotes."""

MAX_PROBLEM_CHARS: Final = 300
"""The longest problem text of one violation."""

MAX_FIELD_PART_CHARS: Final = 40
"""The longest component of a violation's field path (an unknown key is chosen by the input)."""

EARLIEST_DATE: Final = dt.date(1900, 1, 1)
LATEST_DATE: Final = dt.date(2100, 12, 31)
"""Dates must fall within these, inclusive, and event times between the first and the last instant
of them in UTC. Nobody in a trial was born before 1900, nothing in one happens after 2100, and
the protocol's date arithmetic (a few years either way) can then never leave the calendar."""

# A JSON string literal, escapes included. An unterminated one runs to the end of the input (the
# input is broken JSON then, and its brackets are not structure either). Unrolled, so linear.
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"?', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")


def too_deep(text: str, limit: int = MAX_NESTING_DEPTH) -> bool:
    """Whether JSON text nests arrays and objects more than ``limit`` levels deep.

    A scan, not a parse: iterative, so any depth costs no stack, and it stops at the first bracket
    past the limit. Brackets inside string literals are not structure and are not counted. The
    text need not be valid JSON; unbalanced closing brackets never lower the depth below zero.

    Args:
        text: the message.
        limit: the deepest nesting allowed.

    Returns:
        True as soon as some bracket opens level ``limit + 1``.
    """
    # Fast path for nearly every real event (it runs for each): with no more openers than the
    # limit, no nesting can exceed it, wherever they stand. Most events have no array at all, and
    # "in" costs a tenth of a count.
    if text.count("{") + (text.count("[") if "[" in text else 0) <= limit:
        return False
    depth = 0
    for bracket in _NOT_BRACKET.sub("", _STRING.sub("", text)):
        if bracket in "[{":
            depth += 1
            if depth > limit:
                return True
        elif depth:
            depth -= 1
    return False


def excerpt(value: object) -> str:
    """A bounded quotation of an input value for a violation's problem text.

    The ``repr`` of the value (non-printable characters escaped), cut to ``MAX_QUOTE_CHARS`` with
    "…" and the original length when longer. A huge integer is described, not converted: its
    decimal text could be megabytes.
    """
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        return f"an integer of {value.bit_length():,} bits"
    if isinstance(value, str):
        text, length = repr(value[:MAX_QUOTE_CHARS]), len(value)
        if length <= MAX_QUOTE_CHARS and len(text) <= MAX_QUOTE_CHARS + 2:
            return text
        return f"{text[: MAX_QUOTE_CHARS + 1]}… ({length:,} characters)"
    text = repr(value)
    return text if len(text) <= MAX_QUOTE_CHARS else f"{text[:MAX_QUOTE_CHARS]}… ({len(text):,} characters)"


def clip(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, ending in "…" when cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def printable(text: str) -> str:
    """``text`` with what a header or a log line cannot carry escaped (``\\x00``, ``\\ud800``,
    ``\\u202e``), when it holds any: a field path may be a key the input chose."""
    return text if text.isprintable() else "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)
