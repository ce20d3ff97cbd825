"""At most one line per interval for each repeated standard-library record (aiokafka, FastStream).

With the broker away, aiokafka logs every failed connection, fetch and coordinator request: one
rules service wrote about 1,200 lines a second, enough to fill a disk over a long outage and to
bury the one line that says what is wrong. :class:`RepeatLimit` lets the first record of each kind
through, drops its repeats for :data:`REPEAT_INTERVAL_SECONDS`, and makes the next one written
after that carry how many were dropped (``repeated``): nothing is lost silently, and an outage
still shows as one line per kind per interval. Our own structlog events never pass through the
standard library, so they are never limited.

A record's kind is its logger, its level and its message template (``record.msg`` before
``%`` formatting: "Unable connect to node with id %s: %s"), with numbers and hex addresses
replaced, so that a library formatting its message itself (an f-string with a node id or a port)
is still one kind.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from services.errors import ConfigurationError

REPEAT_INTERVAL_SECONDS = 10.0
"""Ten seconds: a broker outage then costs a few lines per kind every 10 s instead of a thousand
a second, while an operator tailing the log still sees within seconds that the failure goes on
(and how often it happened, from ``repeated``)."""

MAX_KINDS = 1_000
"""Kinds tracked at once, so that a library putting a fresh id in every message cannot grow the
table for months; the oldest kind is let go first (its dropped count reported, not lost)."""

REPEAT_INTERVAL_ENV = "TRIALGUARD_LOG_REPEAT_INTERVAL_MS"
"""Overrides :data:`REPEAT_INTERVAL_SECONDS` (milliseconds; 0 turns the limit off). For tests and
for debugging a library, not for production."""

REPEATED_ATTRIBUTE = "trialguard_repeated"
"""The attribute :class:`RepeatLimit` sets on a record it lets through: how many of its kind were
dropped just before it (0 for none)."""

MESSAGE_LIMIT = 300
"""Characters of a library's message kept in a log line (the libraries we use do not put event
data in their messages; a bound keeps a surprise small)."""

_NUMBERS = re.compile(r"0x[0-9a-fA-F]+|\d+")

RepeatsReport = Callable[[str, int, str, int], None]
"""Called with logger name, level, message and count for repeats that no later record carried."""


def record_message(record: logging.LogRecord) -> str:
    """The record's message, formatted if its arguments fit, cut to :data:`MESSAGE_LIMIT`."""
    try:
        return record.getMessage()[:MESSAGE_LIMIT]
    except (TypeError, ValueError):
        return str(record.msg)[:MESSAGE_LIMIT]


def record_kind(record: logging.LogRecord) -> tuple[str, int, str]:
    """Logger, level, and the message template with numbers and addresses replaced by ``#``."""
    return record.name, record.levelno, _NUMBERS.sub("#", str(record.msg)[:MESSAGE_LIMIT])


@dataclass
class _Kind:
    window_ends: float
    """When repeats stop being dropped (monotonic clock)."""
    logger: str
    level: int
    message: str
    """The message of the record last let through, for a report of repeats nothing carried."""
    dropped: int = 0


class RepeatLimit(logging.Filter):
    """Lets through one record of each kind per interval; counts the rest.

    Args:
        interval: seconds during which repeats of a kind let through are dropped.
        report: told of repeats that no later record of their kind carried: when their kind is
            let go (no record of it for an interval after its window, or the table full) or at
            :meth:`flush`.
        clock: monotonic seconds (a test injects its own).
        max_kinds: kinds tracked at once.
        describe: the message a report names (the one the handler writes for a record: uvicorn's
            handler writes only the template, whose arguments could quote a request).
    """

    def __init__(
        self,
        interval: float = REPEAT_INTERVAL_SECONDS,
        report: RepeatsReport | None = None,
        clock: Callable[[], float] = time.monotonic,
        max_kinds: int = MAX_KINDS,
        describe: Callable[[logging.LogRecord], str] = record_message,
    ) -> None:
        super().__init__()
        self.interval = interval
        self.report = report
        self._clock = clock
        self._max_kinds = max_kinds
        self._describe = describe
        # In the order their windows began, so also ended: those over are at the front.
        self._kinds: dict[tuple[str, int, str], _Kind] = {}
        # A library may log from a thread of its own: the table is changed by one caller at a time
        # (a filter that raised would raise out of the library's log call).
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        """Whether the record is written; one let through carries the count of its dropped repeats."""
        if self.interval <= 0:
            return True
        kind = record_kind(record)
        with self._lock:
            now = self._clock()
            seen = self._kinds.get(kind)
            if seen is not None and now < seen.window_ends:
                seen.dropped += 1
                return False
            if seen is not None:
                del self._kinds[kind]
            setattr(record, REPEATED_ATTRIBUTE, 0 if seen is None else seen.dropped)
            let_go = self._let_go(now)
            self._kinds[kind] = _Kind(now + self.interval, record.name, record.levelno, self._describe(record))
        for gone in let_go:
            self._report(gone)
        return True

    def flush(self) -> None:
        """Report every count not carried yet (the process is ending)."""
        with self._lock:
            kinds, self._kinds = self._kinds, {}
        for kind in kinds.values():
            self._report(kind)

    def _let_go(self, now: float) -> list[_Kind]:
        let_go: list[_Kind] = []
        while self._kinds:
            oldest_key, oldest = next(iter(self._kinds.items()))
            # A kind stays one interval past its window: while the failure goes on, its next record
            # carries the count, rather than a report line of its own and then a fresh line.
            if oldest.window_ends + self.interval > now and len(self._kinds) < self._max_kinds:
                break
            del self._kinds[oldest_key]
            let_go.append(oldest)
        return let_go

    def _report(self, kind: _Kind) -> None:
        if kind.dropped and self.report is not None:
            self.report(kind.logger, kind.level, kind.message, kind.dropped)


def repeat_interval_from_env() -> float:
    """:data:`REPEAT_INTERVAL_SECONDS`, or the milliseconds in :data:`REPEAT_INTERVAL_ENV`.

    Raises:
        ConfigurationError: the variable is set but is not a whole number of milliseconds ≥ 0.
    """
    raw = os.environ.get(REPEAT_INTERVAL_ENV, "")
    if raw == "":
        return REPEAT_INTERVAL_SECONDS
    if not raw.isdigit():
        raise ConfigurationError(
            f"{REPEAT_INTERVAL_ENV}={raw[:40]!r} is not a whole number of milliseconds (0 or more)"
        )
    return int(raw) / 1000
