"""``trialguard replay``: run the protocol over a JSON-lines event log, offline, no broker.

An auditor's tool: the same log always yields byte-identical findings, computed by the same pure
step as the live rules service. The shell around ``events.replay.Replay`` lives here: files,
standard streams and the atomic output file; the progress display and the summary are in
``services.replay_report``, shared with ``--jobs N`` (``services.replay_jobs``).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from pathlib import Path
from typing import IO, TextIO

from contracts import ContractError, parse_event
from events.jsonl import BinaryWriter, read_lines, write_line
from events.replay import Replay
from protocol.registry import ProtocolLookupError, versions_for
from services.files import atomic_output
from services.ledger.export_format import ExportFormatError, is_export, participant_event_lines
from services.replay_report import (
    EXIT_OK,
    EXIT_REJECTED,
    STDIN_NAME,
    Progress,
    Report,
    fail,
    format_summary,
    progress_for,
    reject,
)


def replay_stream(
    source: IO[bytes],
    out: BinaryWriter,
    replay: Replay,
    *,
    name: str,
    errors: TextIO,
    progress: Progress | None = None,
    lines: Iterable[tuple[int, bytes]] | None = None,
) -> Report:
    """Replay every line of ``source`` (or the numbered ``lines`` given, e.g. the participant-events
    records of an audit export), writing each finding to ``out`` as one JSON line.

    A line that breaks the contract is reported on ``errors`` as ``NAME:LINE: <error>`` and
    skipped; every other line is processed.

    Returns:
        What was read and rejected.
    """
    report = Report(name)
    for number, message in read_lines(source) if lines is None else lines:
        report.lines += 1
        try:
            findings = replay.feed(parse_event(message))
        except ContractError as e:
            report.contract_errors.add(number)
            reject(report.source, number, str(e), errors, progress)
            continue
        except Exception as e:
            report.core_errors.add(number)
            reject(report.source, number, f"protocol core raised {type(e).__name__}: {e}", errors, progress)
            continue
        for finding in findings:
            write_line(out, finding)
        if progress is not None:
            progress.update(replay.processed + replay.duplicates, source.tell)
    return report


def run(
    source: str,
    out: str | None,
    study: str,
    *,
    stdin: IO[bytes],
    stdout: IO[bytes],
    stderr: TextIO,
    jobs: int = 1,
) -> int:
    """Run ``trialguard replay``.

    Args:
        source: a JSON-lines file, or ``-`` for ``stdin``.
        out: the file to write the findings to, or None for ``stdout``.
        study: the study whose protocol judges the log; events of other studies are rejected.
        stdin: the binary standard input.
        stdout: the binary standard output.
        stderr: where errors, progress and the summary go.
        jobs: worker processes; above 1, participants are spread over them
            (``services.replay_jobs``), with byte-identical output, messages and summary.

    Returns:
        0 when every line was fine, 1 when some lines were rejected (the findings of all the
        other lines are still written), 2 for a usage error or when input or output failed (then
        nothing is written to ``out``).
    """
    if jobs < 1:
        return fail(stderr, f"--jobs {jobs}: must be at least 1")
    try:
        history = versions_for(study)
    except ProtocolLookupError as e:
        return fail(stderr, e.args[0])
    if problem := _check_paths(source, out):
        return fail(stderr, problem)
    if jobs > 1:
        from services.replay_jobs import run_jobs  # multiprocessing and temporary files: imported when used

        return run_jobs(source, out, study, jobs, stdin=stdin, stdout=stdout, stderr=stderr)
    name = STDIN_NAME if source == "-" else source
    replay = Replay(history)
    progress: Progress | None = None
    try:
        # An audit export is replayed from its participant-events records, line numbers kept.
        lines = participant_event_lines(Path(source)) if source != "-" and is_export(Path(source)) else None
        with contextlib.nullcontext(stdin) if source == "-" else open(source, "rb") as stream:
            progress = progress_for(stream, name, stderr) if lines is None else None
            if out is None:
                report = replay_stream(stream, stdout, replay, name=name, errors=stderr, progress=progress, lines=lines)
                stdout.flush()
            else:
                with atomic_output(Path(out)) as f:
                    report = replay_stream(stream, f, replay, name=name, errors=stderr, progress=progress, lines=lines)
    except BrokenPipeError:
        raise  # the reader of stdout left (`| head`): the caller ends quietly
    except ExportFormatError as e:
        return fail(stderr, f"{name}:{e.line}: {e.reason}")
    except OSError as e:
        return fail(stderr, f"{e.filename or name}: {e.strerror or e}")
    finally:
        if progress is not None:
            progress.clear()
    stderr.write(format_summary(report, replay))
    return EXIT_REJECTED if report.rejected else EXIT_OK


def _check_paths(source: str, out: str | None) -> str | None:
    """Why these paths cannot work, before anything is read or written (None when they can)."""
    if source != "-" and not os.path.exists(source):
        return f"{source}: no such file"
    if source != "-" and os.path.isdir(source):
        return f"{source}: is a directory, not a JSON-lines file"
    if out is None:
        return None
    target = Path(out)
    if target.is_dir():
        return f"--out {out}: is a directory"
    if not target.parent.is_dir():
        return f"--out {out}: folder {target.parent} does not exist"
    if source != "-" and target.exists() and os.path.samefile(source, target):
        return f"--out {out}: is the input file; it would be replaced by the findings"
    return None
