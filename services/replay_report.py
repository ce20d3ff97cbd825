"""What ``trialguard replay`` tells while and after it runs, with one worker or many: the progress
display, the rejected lines, the summary, the exit statuses (``services.replay`` and
``services.replay_jobs`` both build on this module, neither on the other)."""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, TextIO

from events.replay import Replay

PROGRESS_MIN_BYTES = 5_000_000
"""Inputs smaller than this replay in about a second: a progress display would only flicker."""

PROGRESS_INTERVAL = 0.25
"""Seconds between redraws of the terminal progress bar: enough to look alive, cheap to draw."""

LISTED_ERRORS = 20
"""Line numbers of rejected lines the summary lists; the rest are counted (each was already
reported on its own line)."""

STDIN_NAME = "<stdin>"

EXIT_OK, EXIT_REJECTED, EXIT_USAGE = 0, 1, 2


class Progress:
    """Progress of reading a large input file, on stderr.

    At most every ``interval`` seconds: on a terminal, one line redrawn in place; elsewhere (a log
    file, CI) a plain line when a further 10 % has been read, so logs get ten lines, not thousands.

    Args:
        stream: where to draw (stderr).
        name: the input's name, for plain lines.
        total: the input's size in bytes.
        tty: draw a bar redrawn in place, rather than plain lines.
        clock: monotonic seconds (injected by tests).
        interval: seconds between draws at least.
    """

    def __init__(
        self,
        stream: TextIO,
        name: str,
        total: int,
        *,
        tty: bool,
        clock: Callable[[], float] = time.monotonic,
        interval: float = PROGRESS_INTERVAL,
    ) -> None:
        self.stream, self.name, self.total, self.tty = stream, name, max(total, 1), tty
        self.clock, self.interval = clock, interval
        self.started = clock()
        self._next_draw = self.started + interval
        self._next_decile = 1
        self._drawn = False

    def update(self, events: int, position: Callable[[], int]) -> None:
        """Report progress: ``events`` events replayed so far, ``position()`` bytes read.

        Called once per line, so it does nothing until the next draw is due: ``position`` is a
        callable because asking a file its offset is a system call, not worth making per line.
        """
        now = self.clock()
        if now < self._next_draw:
            return
        self._next_draw = now + self.interval
        read = position()
        if self.tty:
            self.stream.write("\r" + self.render(read, events, now) + "\x1b[K")
            self.stream.flush()
            self._drawn = True
            return
        decile = read * 10 // self.total
        if decile >= self._next_decile:
            self._next_decile = decile + 1
            mb, total_mb, rate = read / 1e6, self.total / 1e6, self._rate(events, now)
            self.stream.write(
                f"replay: {min(decile * 10, 100)}% of {self.name} ({mb:.1f}/{total_mb:.1f} MB, {rate:,.0f} events/s)\n"
            )
            self.stream.flush()

    def render(self, position: int, events: int, now: float) -> str:
        """The terminal line: a bar, bytes read of the total, percent, events per second."""
        fraction = min(position / self.total, 1.0)
        filled = int(fraction * 20)
        bar = "#" * filled + "-" * (20 - filled)
        mb, total_mb = position / 1e6, self.total / 1e6
        return f"replay [{bar}] {mb:.1f}/{total_mb:.1f} MB {fraction:6.1%} {self._rate(events, now):,.0f} events/s"

    def clear(self) -> None:
        """Erase the terminal line, so that a message or the summary starts on a clean line."""
        if self._drawn:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self._drawn = False

    def _rate(self, events: int, now: float) -> float:
        elapsed = now - self.started
        return events / elapsed if elapsed > 0 else 0.0


def progress_for(
    source: IO[bytes], name: str, stderr: TextIO, *, min_bytes: int = PROGRESS_MIN_BYTES
) -> Progress | None:
    """A progress display when ``source`` is a regular file over ``min_bytes``, else None.

    Pipes have no known size (and ``tell`` does not work on them), so they get none.
    """
    try:
        info = os.fstat(source.fileno())
    except (OSError, ValueError, AttributeError):  # io.BytesIO and friends have no descriptor
        return None
    if not stat.S_ISREG(info.st_mode) or info.st_size <= min_bytes:
        return None
    return Progress(stderr, name, info.st_size, tty=stderr.isatty())


@dataclass
class Rejections:
    """Rejected lines of one kind: a count, and the first line numbers (memory stays bounded)."""

    count: int = 0
    first: list[int] = field(default_factory=list)

    def add(self, line: int) -> None:
        self.count += 1
        if len(self.first) < LISTED_ERRORS:
            self.first.append(line)

    def describe(self) -> str:
        """``lines 3, 9 and 12 more``; empty when there are none."""
        if not self.count:
            return ""
        listed = ", ".join(str(n) for n in self.first)
        more = self.count - len(self.first)
        return f"line{'s' if self.count > 1 else ''} {listed}" + (f" and {more} more" if more else "")


@dataclass
class Report:
    """What a replay read and rejected (what it processed and raised is in ``Replay``).

    Attributes:
        source: the input's name in messages.
        lines: non-blank lines read.
        contract_errors: line numbers of the first ``LISTED_ERRORS`` lines that broke the
            contract, and how many there were in all.
        core_errors: the same for valid events the protocol core raised an exception on (a bug
            in the core: the live service dead-letters these, so a replay skips them alike).
    """

    source: str
    lines: int = 0
    contract_errors: Rejections = field(default_factory=Rejections)
    core_errors: Rejections = field(default_factory=Rejections)

    @property
    def rejected(self) -> int:
        """Lines skipped, for whatever reason."""
        return self.contract_errors.count + self.core_errors.count


def reject(source: str, number: int, error: str, errors: TextIO, progress: Progress | None) -> None:
    """Report a skipped line on ``errors`` as ``SOURCE:NUMBER: error``."""
    if progress is not None:
        progress.clear()  # else the message would be glued to the bar
    errors.write(f"{source}:{number}: {error}\n")


def format_summary(report: Report, replay: Replay) -> str:
    """The end-of-run summary: counts aligned in columns, outputs by rule id (sorted).

    ``lines read`` = ``events processed`` + ``duplicates`` + the rejected lines.
    """
    history = replay.history
    rows = [
        ("lines read", report.lines, ""),
        ("events processed", replay.processed, ""),
        ("duplicates", replay.duplicates, ""),
        ("contract errors", report.contract_errors.count, report.contract_errors.describe()),
    ]
    if report.core_errors.count:
        rows.append(("core errors", report.core_errors.count, report.core_errors.describe()))
    if replay.unmatched_corrections:  # processed, changing nothing: named no result kept
        rows.append(("corrections unmatched", replay.unmatched_corrections, "named no kept result"))
    outputs = sum(replay.findings_by_rule.values()) + replay.superseded
    rows.append(("outputs", outputs, ""))
    rows += [(f"  {rule}", count, "") for rule, count in sorted(replay.findings_by_rule.items())]
    if replay.superseded:
        rows.append(("  FindingSuperseded", replay.superseded, ""))
    width = max(len(label) for label, _, _ in rows)
    digits = max(len(str(count)) for _, count, _ in rows)
    versions = ", ".join(f"v{v.name}" for v in history.versions)
    lines = [f"replay of {report.source} under {history.study_id} protocol {versions}"]
    lines += [f"  {label:<{width}}  {count:>{digits}}{'  ' + note if note else ''}" for label, count, note in rows]
    return "\n".join(lines) + "\n"


def fail(stderr: TextIO, message: str) -> int:
    """Say why the replay cannot run (or could not finish): exit status 2."""
    stderr.write(f"trialguard replay: {message}\n")
    return EXIT_USAGE
