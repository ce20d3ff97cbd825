"""The mutation operators of hostile input (tests/hostile.py), and the values they plant.

A tree operator changes the parsed JSON of a valid line (a ``Draft``); a byte operator changes its
encoding. Each takes ``at`` (which place) and ``arg`` (which variant), plain integers taken modulo
what there is, so any integers make a mutation and small ones shrink to simple ones.

The strings and keys the operators invent carry ``MARKER``. Big values (500 KB strings, 300,000
levels of nesting) are spliced into the encoding as bytes (``Draft.raw``), never built as trees.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from contracts import EVENT_TYPES

MARKER = "QZXHOSTILEQZX"
"""Planted in the strings and keys the mutations invent; no log line may carry it."""

Json = Any
T = TypeVar("T")
Location = tuple[Json, Json]  # (container, key or index)


@dataclass
class Draft:
    """A valid line being mutated: its parsed JSON, the corpus it came from, bytes to splice in."""

    doc: Json
    corpus: Sequence[bytes]
    raws: list[bytes] = field(default_factory=list)

    def raw(self, data: bytes) -> str:
        """A placeholder for JSON text spliced in verbatim on encoding (a literal, a deep nest)."""
        self.raws.append(data)
        return f"@@RAW{len(self.raws) - 1}@@"

    def encode(self, *, ensure_ascii: bool) -> bytes:
        """The mutated line; ``ensure_ascii=False`` writes non-ASCII (and lone surrogates) raw."""
        # surrogatepass: a lone surrogate written raw is invalid UTF-8, which is one more hostile input.
        data = json.dumps(self.doc, ensure_ascii=ensure_ascii).encode("utf-8", "surrogatepass")
        for n, raw in enumerate(self.raws):  # once: a repeated placeholder stays a string
            data = data.replace(f'"@@RAW{n}@@"'.encode(), raw, 1)
        return data

    def locations(self, keep: Callable[[Json], bool] = lambda _: True) -> list[Location]:
        """Every (container, key) below the top, depth first, whose value ``keep``s."""
        found: list[Location] = []
        stack: list[Json] = [self.doc]
        while stack:
            node = stack.pop()
            keys: Sequence[Json] = list(node) if isinstance(node, dict) else range(len(node))
            for key in keys:
                if keep(node[key]):
                    found.append((node, key))
                if isinstance(node[key], (dict, list)):
                    stack.append(node[key])
        return found

    def pick(self, at: int, keep: Callable[[Json], bool] = lambda _: True) -> Location | None:
        places = self.locations(keep)
        return places[at % len(places)] if places else None

    def named(self, at: int, names: tuple[str, ...]) -> Location | None:
        places = [(c, k) for c, k in self.locations() if isinstance(c, dict) and k in names]
        return places[at % len(places)] if places else None


def choose(options: Sequence[T], arg: int) -> T:
    """The variant ``arg`` picks (modulo the options)."""
    return options[arg % len(options)]


# --- tree mutations: on the parsed line --------------------------------------------------------

WRONG_VALUES: tuple[Json, ...] = (None, True, False, 0, -1, 1.5, "", MARKER, "1", "true", [], {}, [MARKER],
                                  {MARKER: MARKER}, "null")  # fmt: skip
ODD_TEXT = (
    "\ud800",  # a lone surrogate: escaped as \ud800 in ASCII JSON, raw (invalid UTF-8) otherwise
    "\udfff",
    "\ud83d",
    "\x00",
    "\u202e",  # right-to-left override
    "\u200f",  # right-to-left mark
    "\ufeff",
    "\U0001f600" * 20,  # emoji: 4 bytes of UTF-8 each, 12 when escaped
    "e\u0301",  # e + combining acute
    "\u0301" * 50,
    "\U0001d54f",
    "\uffff",
    "\U0010ffff",
    "\u2028\u2029",
    "霉酚酸酯",  # mycophenolate mofetil, as a site in Guangzhou may write it
    " ",
    "\t\n\r",
)
NUMBERS: tuple[bytes, ...] = (b"0", b"-0.0", b"5e-324", b"1e-300", b"1e-12", b"9.99e-13", b"1e12", b"1.0000001e12",
                              b"1e15", b"-1e12", b"1.7976931348623157e308", b"9007199254740993", b"9223372036854775808",
                              b"-9223372036854775809", b"0.1", b"0.5", b"1", b"2", b"5", b"100", b"299.9999", b"0.2",
                              b"0.19999", b"1E2", b"1e+2")  # fmt: skip
NON_NUMBERS: tuple[bytes, ...] = (b"NaN", b"Infinity", b"-Infinity", b"1e309", b"-1e309", b"1e-400", b"1" + b"0" * 400,
                                  b"-" + b"9" * 400, b"9" * 5000, b"01", b"+1", b".5", b"1.", b"0x10", b"1_000",
                                  b"--1", b"nan", b"inf")  # fmt: skip
TIMESTAMPS: tuple[Json, ...] = ("2025-11-03T10:30:00", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59+14:00",
                                "1899-12-31T23:59:59Z", "1900-01-01T00:00:00Z", "1900-01-01T00:00:00+14:00",
                                "1900-01-01T00:00:00-12:00", "2100-12-31T23:59:59Z", "2100-12-31T23:59:59.999999Z",
                                "2101-01-01T00:00:00Z", "2025-02-29T00:00:00Z", "2024-02-29T23:59:60Z",
                                "2025-11-03T10:30:00+24:00", "2025-11-03T10:30:00+23:59", "2025-11-03 10:30:00+08:00",
                                "2025-11-03T10:30:00.123456789Z", "20251103T103000Z", "2025-11-03T10:30:00-00:00",
                                "2025-W45-1", "1700000000", 1700000000, "2025-11-03", "")  # fmt: skip
DATES: tuple[Json, ...] = ("0001-01-01", "9999-12-31", "1899-12-31", "1900-01-01", "2100-12-31", "2101-01-01",
                           "2015-02-29", "2016-02-29", "2015-09-14T00:00:00Z", "20150914", "2015-9-14", "", 20150914,
                           "2015-09-14\u0000")  # fmt: skip
STRING_LENGTHS = (41, 61, 81, 501, 4_000, 60_000, 65_000, 70_000, 500_000)
DEPTHS = (3, 7, 8, 9, 10, 50, 199, 200, 201, 1_000, 30_000, 200_000, 300_000)
REPEATS = (0, 2, 10, 100, 300, 1_000, 5_000)
MAX_BUILD_BYTES, MAX_BUILD_ITEMS = 1_000_000, 20_000
"""The most a repeated list grows to (mutations compound: a 500 KB string in a list repeated 5,000 times)."""


def _drop(b: Draft, at: int, arg: int) -> None:
    if (place := b.pick(at)) is not None:
        container, key = place
        del container[key]


def _rename(b: Draft, at: int, arg: int) -> None:
    places = [(c, k) for c, k in b.locations() if isinstance(c, dict)]
    if not places:
        return
    container, key = places[at % len(places)]
    new = choose([f"{MARKER}_{key}", f"{key.upper()}{MARKER}", f"{key} {MARKER}", f"{key}\u0430{MARKER}",
                   f"{MARKER}\u0000", f"{MARKER}" + "k" * 10_000, "", "__proto__", "2015-09-14"], arg)  # fmt: skip
    container[new] = container.pop(key)


def _retype(b: Draft, at: int, arg: int) -> None:
    if (place := b.pick(at)) is not None:
        container, key = place
        container[key] = _copy(choose(WRONG_VALUES, arg))  # a copy: later mutations change it in place


def _huge_string(b: Draft, at: int, arg: int) -> None:
    if (place := b.pick(at)) is not None:
        container, key = place
        length = choose(STRING_LENGTHS, arg)
        container[key] = (MARKER + "x" * length)[:length]


def _deep(b: Draft, at: int, arg: int) -> None:
    if (place := b.pick(at)) is not None:
        container, key = place
        container[key] = b.raw(nest(choose(DEPTHS, arg), shape=arg // len(DEPTHS)))


def nest(depth: int, shape: int = 0) -> bytes:
    """JSON text ``depth`` levels deep: arrays, objects, both alternating, or arrays left open."""
    match shape % 4:
        case 0:
            return b"[" * depth + b"]" * depth
        case 1:
            return b'{"a":' * (depth - 1) + b"{}" + b"}" * (depth - 1)
        case 2:
            pairs = (depth + 1) // 2
            return b'[{"a":' * pairs + b"1" + b"}]" * pairs
        case _:
            return b"[" * depth


def _odd_text(b: Draft, at: int, arg: int) -> None:
    place = b.pick(at, lambda v: isinstance(v, str))
    if place is not None:
        container, key = place
        text = choose(ODD_TEXT, arg)
        container[key] = choose([text, container[key] + text, text + container[key], MARKER + text], arg // 17)


def _odd_key(b: Draft, at: int, arg: int) -> None:
    place = b.pick(at, lambda v: isinstance(v, dict))
    if place is not None:
        place[0][place[1]][MARKER + choose(ODD_TEXT, arg)] = MARKER


def _literal(b: Draft, at: int, arg: int, options: tuple[bytes, ...]) -> None:
    numeric = b.pick(at, lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)) or b.pick(at)
    if numeric is not None:
        container, key = numeric
        container[key] = b.raw(choose(options, arg))


def _number(b: Draft, at: int, arg: int) -> None:
    _literal(b, at, arg, NUMBERS)


def _non_number(b: Draft, at: int, arg: int) -> None:
    _literal(b, at, arg, NON_NUMBERS)


def _timestamp(b: Draft, at: int, arg: int) -> None:
    if (place := b.named(at, ("occurred_at", "recorded_at"))) is not None:
        place[0][place[1]] = choose(TIMESTAMPS, arg)


def _date(b: Draft, at: int, arg: int) -> None:
    place = b.named(at, ("birth_date", "start", "end")) or b.named(at, ("occurred_at",))
    if place is not None:
        place[0][place[1]] = choose(DATES, arg)


def _event_type(b: Draft, at: int, arg: int) -> None:
    if isinstance(b.doc, dict):
        b.doc["event_type"] = choose([*EVENT_TYPES, MARKER, "participantregistered", "", None, 1], arg)


def _transplant(b: Draft, at: int, arg: int) -> None:
    """Another event's type and payload in this envelope: valid, but maybe out of any expected order."""
    other = json.loads(b.corpus[at % len(b.corpus)])
    if isinstance(b.doc, dict):
        b.doc.update(event_type=other["event_type"], payload=other["payload"])


SHIFTS = (-36_500 * 86_400, -3_650 * 86_400, -365 * 86_400, -30 * 86_400, -86_400, -1, 1, 86_400, 30 * 86_400,
          365 * 86_400, 3_650 * 86_400, 27_375 * 86_400)  # fmt: skip
OFFSETS = ("Z", "+14:00", "-12:00", "+05:45", "+00:00")


def _shift(b: Draft, at: int, arg: int) -> None:
    """An event time moved by seconds to a century, or written with another offset: valid when in range."""
    place = b.named(at, ("occurred_at", "recorded_at"))
    if place is None or not isinstance(place[0][place[1]], str):
        return
    container, key = place
    try:
        when = dt.datetime.fromisoformat(container[key])
        if arg % 2:
            when += dt.timedelta(seconds=choose(SHIFTS, arg // 2))
        elif when.tzinfo is not None:
            when = when.astimezone(_zone(choose(OFFSETS, arg // 2)))
    except (ValueError, OverflowError):  # an earlier mutation left no time, or one near year 1 or 9999
        return
    container[key] = when.isoformat().replace("+00:00", "Z" if arg % 4 == 2 else "+00:00")


def _zone(text: str) -> dt.tzinfo:
    if text == "Z":
        return dt.UTC
    sign = -1 if text[0] == "-" else 1
    return dt.timezone(sign * dt.timedelta(hours=int(text[1:3]), minutes=int(text[4:6])))


def _repeat(b: Draft, at: int, arg: int) -> None:
    place = b.pick(at, lambda v: isinstance(v, list) and bool(v))
    if place is not None:
        container, key = place
        items = container[key]
        most = min(MAX_BUILD_BYTES // len(json.dumps(items)), MAX_BUILD_ITEMS // len(items))
        # Copies, not references: a later mutation of one item must not change them all (and a
        # repeat inside a repeat would multiply, to gigabytes).
        container[key] = _copy(items * min(choose(REPEATS, arg), max(most, 1)))


def _copy(value: Json) -> Json:
    return json.loads(json.dumps(value))


TREE_OPS: dict[str, Callable[[Draft, int, int], None]] = {
    "drop": _drop,
    "rename": _rename,
    "retype": _retype,
    "huge_string": _huge_string,
    "deep": _deep,
    "odd_text": _odd_text,
    "odd_key": _odd_key,
    "number": _number,
    "non_number": _non_number,
    "timestamp": _timestamp,
    "date": _date,
    "event_type": _event_type,
    "repeat": _repeat,
    "transplant": _transplant,
    "shift": _shift,
}


# --- byte mutations: on the encoded line -------------------------------------------------------

_QUOTE = re.compile(b'"')
BAD_UTF8 = (b"\xff", b"\xfe", b"\xc0\x80", b"\xed\xa0\x80", b"\x80", b"\xe2\x82", b"\xf4\x90\x80\x80",
            b"\xf8\x88\x80\x80\x80", b"\xc3")  # fmt: skip


def _inside_a_string(data: bytes, at: int) -> int:
    """A position just after an opening or closing quote (inside a string, about half the time)."""
    quotes = [m.end() for m in _QUOTE.finditer(data)]
    return quotes[at % len(quotes)] if quotes else at % (len(data) + 1)


def _bad_utf8(data: bytes, at: int, arg: int) -> bytes:
    i = _inside_a_string(data, at)
    return data[:i] + choose(BAD_UTF8, arg) + data[i:]


def _nul(data: bytes, at: int, arg: int) -> bytes:
    i = _inside_a_string(data, at) if arg % 2 else at % (len(data) + 1)
    return data[:i] + b"\x00" + data[i:]


def _truncate(data: bytes, at: int, arg: int) -> bytes:
    return data[: at % max(len(data), 1)]


def _flip(data: bytes, at: int, arg: int) -> bytes:
    i = at % max(len(data), 1)
    return data[:i] + bytes([arg % 256]) + data[i + 1 :]


def _duplicate_key(data: bytes, at: int, arg: int) -> bytes:
    key = choose(["event_type", "event_id", "participant_id", "payload", "occurred_at", MARKER], at)
    value = json.dumps(choose([*EVENT_TYPES[:3], MARKER, None, {}, "2025-11-03T10:30:00Z"], arg)).encode()
    pair = json.dumps(key).encode() + b": " + value
    if arg % 2 and data.endswith(b"}"):
        return data[:-1] + b", " + pair + b"}"
    return data.replace(b"{", b"{" + pair + b", ", 1)


WRAPPERS: tuple[Callable[[bytes], bytes], ...] = (
    lambda d: b"[" + d + b"]",
    lambda d: json.dumps(d.decode("utf-8", "replace")).encode(),
    lambda d: b"null",
    lambda d: b"true",
    lambda d: b"0",
    lambda d: b"[]",
    lambda d: b"{}",
    lambda d: b'""',
    lambda d: d + d,
    lambda d: d + b"\n" + d,
    lambda d: d + b"x",
    lambda d: b" \t\r\n" + d + b"\n",
    lambda d: b"\xef\xbb\xbf" + d,
    lambda d: b"",
    lambda d: b" ",
    lambda d: d.replace(b", ", b",\r\n"),
)


def _wrap(data: bytes, at: int, arg: int) -> bytes:
    return choose(WRAPPERS, arg)(data)


BYTE_OPS: dict[str, Callable[[bytes, int, int], bytes]] = {
    "bad_utf8": _bad_utf8,
    "nul": _nul,
    "truncate": _truncate,
    "flip": _flip,
    "duplicate_key": _duplicate_key,
    "wrap": _wrap,
}

OPS: tuple[str, ...] = (*TREE_OPS, *BYTE_OPS)
"""Every mutation operator, tree ones first."""
