"""``trialguard replay --jobs N``: the same replay, spread over N worker processes.

Participants are independent: an event changes only its own participant's state. So each
participant is given to one worker (by a stable hash of its id), every worker runs the same
``events.replay.Replay`` over the lines of its participants, and the parent merges what the
workers produced back into input line order. Findings, per-line error messages, summary and exit
status are byte-identical to ``--jobs 1``.

Every worker reads the whole input itself and keeps the lines it owns: routing a line costs a
byte search (a JSON parse only for unusual lines), far less than replaying it, and the parent
does not become a bottleneck handing lines out. A worker writes each finding and each rejected
line, tagged with its line number, to a temporary file of its own (already in line order); the
parent merges those files with ``heapq.merge``, so memory stays bounded however many findings
there are. Nothing is written until every worker has finished: a worker that dies fails the
whole replay.
"""

from __future__ import annotations

import gc
import heapq
import io
import json
import multiprocessing
import multiprocessing.connection
import os
import shutil
import signal
import struct
import sys
import tempfile
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from operator import itemgetter
from pathlib import Path
from typing import IO, Any, TextIO

from contracts import ContractError, parse_event
from events.jsonl import BinaryWriter, read_lines, write_line
from events.replay import Replay
from protocol.registry import versions_for
from services.durable_host import quiet_durable_host
from services.files import atomic_output
from services.ledger.export_format import ExportFormatError, is_export, participant_event_lines
from services.replay_report import (
    EXIT_OK,
    EXIT_REJECTED,
    LISTED_ERRORS,
    PROGRESS_INTERVAL,
    STDIN_NAME,
    Progress,
    Rejections,
    Report,
    fail,
    format_summary,
    progress_for,
    reject,
)

KEY = b'"participant_id"'
UNROUTABLE = 0
"""The worker of lines without a participant id: they only ever give a contract error, which
does not depend on the worker, so any one will do as long as it is always the same."""

ENTRY = struct.Struct("<QBI")
"""A worker's output entry header: line number, kind, payload length (then the payload)."""
FINDING, REJECTED = 0, 1

PROGRESS_EVERY = 1024
"""Lines between a worker's progress reports (and checks that its parent is still alive)."""


def owner(participant_id: bytes, jobs: int) -> int:
    """The worker of a participant: CRC-32 of its id (UTF-8), stable across processes and runs
    (unlike ``hash``, which is salted per process)."""
    return zlib.crc32(participant_id) % jobs


def route(message: bytes, jobs: int) -> int:
    """The worker of one input line: the owner of its participant id, else ``UNROUTABLE``.

    Must agree with the parser on every line the parser accepts (else a participant's events
    would be split over workers). The fast path handles lines without a backslash, so without
    escapes: there every ``"`` opens or closes a string, the id's key can only be spelled
    ``"participant_id"``, and when that string appears exactly once in a valid event it is the
    top-level key. Anything else (escapes, spaces before the value, a nested or repeated key, a
    value spelled ``participant_id``) takes the JSON parse, which like the parser keeps the last
    of repeated keys. The worker checks the outcome on every event it accepts anyway.
    """
    # This runs for every line in every worker: each test is one pass over the line at most.
    start = message.find(KEY) + len(KEY)
    if start >= len(KEY) and message.startswith(b':"', start) and message.find(KEY, start) < 0:
        end = message.find(b'"', start + 2)
        if end > 0 and b"\\" not in message:
            return zlib.crc32(message[start + 2 : end]) % jobs  # owner(), inlined
    try:
        value = json.loads(message)["participant_id"]
        return owner(value.encode("utf-8"), jobs) if isinstance(value, str) else UNROUTABLE
    except Exception:  # not JSON, not an object, no id, unencodable: a contract error to come
        return UNROUTABLE


@dataclass(frozen=True)
class Task:
    """What one worker process is asked to do (picklable, for start methods other than fork)."""

    index: int
    jobs: int
    path: str
    export: bool
    study: str
    name: str
    folder: str
    parent: int
    gc_threshold: tuple[int, ...]
    counters: Any  # shared int64 array: [position of worker i, events of worker i] per worker, or None

    @property
    def entries(self) -> Path:
        return Path(self.folder, f"entries-{self.index}")

    @property
    def results(self) -> Path:
        return Path(self.folder, f"results-{self.index}.json")


class MisroutedError(Exception):
    """An event reached a worker that does not own its participant: a bug in ``route``."""


def work(task: Task) -> None:
    """A worker process: replay the lines it owns, write its entries and then its results."""
    # Ctrl-C reaches the whole process group: the parent alone handles it, ending the workers.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not the parent's handler: just end
    gc.set_threshold(*task.gc_threshold)
    quiet_durable_host()  # a spawned worker's own host (a forked one has its parent's)
    replay = Replay(versions_for(task.study))
    report = Report(task.name)
    failure: dict[str, Any] | None = None
    with open(task.entries, "wb", buffering=1 << 20) as entries:
        try:
            _replay_owned(task, replay, report, entries)
        except ExportFormatError as e:
            # Where --jobs 1 stops too, after writing what came before: so the entries are kept.
            failure = {"kind": "partial", "message": f"{task.name}:{e.line}: {e.reason}"}
        except OSError as e:  # reading the input or writing the entries: these may be cut short
            failure = {"kind": "fatal", "message": f"{e.filename or task.name}: {e.strerror or e}"}
        except MisroutedError as e:
            failure = {"kind": "fatal", "message": str(e)}
    results = {
        "lines": report.lines,
        "processed": replay.processed,
        "duplicates": replay.duplicates,
        "findings_by_rule": dict(replay.findings_by_rule),
        "superseded": replay.superseded,
        "unmatched_corrections": replay.unmatched_corrections,
        "contract_errors": [report.contract_errors.count, report.contract_errors.first],
        "core_errors": [report.core_errors.count, report.core_errors.first],
        "failure": failure,
    }
    # Written last and renamed into place: its presence says the entries are complete.
    partial = task.results.with_suffix(".part")
    partial.write_text(json.dumps(results))
    os.replace(partial, task.results)


def _replay_owned(task: Task, replay: Replay, report: Report, entries: IO[bytes]) -> None:
    """``services.replay.replay_stream`` restricted to the lines this worker owns."""
    index, jobs, counters = task.index, task.jobs, task.counters
    scratch = io.BytesIO()
    with open(task.path, "rb") as stream:
        lines = participant_event_lines(Path(task.path)) if task.export else read_lines(stream)
        for number, message in lines:
            if number % PROGRESS_EVERY == 0:
                if os.getppid() != task.parent:
                    os._exit(1)  # the parent is gone: nobody will read what we write
                if counters is not None:
                    counters[2 * index], counters[2 * index + 1] = stream.tell(), replay.processed + replay.duplicates
            if route(message, jobs) != index:
                continue
            report.lines += 1
            try:
                event = parse_event(message)
                if (wanted := owner(event.participant_id.encode("utf-8"), jobs)) != index:
                    problem = f"routed to worker {index + 1}, not {wanted + 1} (a bug in replay --jobs)"
                    raise MisroutedError(f"{task.name}:{number}: {problem}")
                findings = replay.feed(event)
            except MisroutedError:
                raise
            except ContractError as e:
                report.contract_errors.add(number)
                _entry(entries, number, REJECTED, str(e).encode("utf-8", "surrogatepass"))
                continue
            except Exception as e:
                report.core_errors.add(number)
                error = f"protocol core raised {type(e).__name__}: {e}"
                _entry(entries, number, REJECTED, error.encode("utf-8", "surrogatepass"))
                continue
            for finding in findings:
                scratch.seek(0)
                scratch.truncate()
                write_line(scratch, finding)  # the very bytes --jobs 1 writes
                _entry(entries, number, FINDING, scratch.getvalue())


def _entry(entries: IO[bytes], number: int, kind: int, payload: bytes) -> None:
    entries.write(ENTRY.pack(number, kind, len(payload)) + payload)


def read_entries(path: Path) -> Iterator[tuple[int, int, bytes]]:
    """A worker's entries in the order written: ``(line number, kind, payload)``."""
    with path.open("rb", buffering=1 << 20) as f:
        while header := f.read(ENTRY.size):
            number, kind, size = ENTRY.unpack(header)
            yield number, kind, f.read(size)


class WorkerError(Exception):
    """A worker died or could not finish; nothing has been written."""


def run_jobs(
    source: str,
    out: str | None,
    study: str,
    jobs: int,
    *,
    stdin: IO[bytes],
    stdout: IO[bytes],
    stderr: TextIO,
) -> int:
    """Run ``trialguard replay --jobs N`` (N > 1), paths and study already checked.

    Standard input is first copied to a temporary file: every worker reads the input itself.
    Arguments and exit status as ``services.replay.run``.
    """
    name = STDIN_NAME if source == "-" else source
    progress: Progress | None = None
    workers: list[multiprocessing.process.BaseProcess] = []
    try:
        folder = tempfile.mkdtemp(prefix="trialguard-replay-")
    except OSError as e:
        return fail(stderr, f"temporary folder: {e.strerror or e}")
    # SIGTERM unwinds like Ctrl-C, so the workers are ended and the temporary files removed.
    sigterm = (
        threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
    )
    if sigterm:
        signal.signal(signal.SIGTERM, lambda signum, _: sys.exit(128 + signum))
    try:
        try:
            if source == "-":
                progress = progress_for(stdin, name, stderr)  # as --jobs 1: none for a pipe
                path, export = os.path.join(folder, "stdin.jsonl"), False
                with open(path, "wb") as spool:
                    shutil.copyfileobj(stdin, spool, 1 << 20)
            else:
                path, export = source, is_export(Path(source))
                with open(path, "rb") as stream:
                    progress = None if export else progress_for(stream, name, stderr)
            tasks = _start(path, export, study, name, folder, jobs, progress is not None, workers)
            _wait(workers, tasks, progress)
            results = [json.loads(task.results.read_text()) for task in tasks]
        except OSError as e:
            return fail(stderr, f"{e.filename or name}: {e.strerror or e}")
        except WorkerError as e:
            return fail(stderr, str(e))
        finally:
            for worker in workers:  # only still running after an error or an interrupt
                if worker.is_alive():
                    worker.terminate()
                worker.join()
            if progress is not None:
                progress.clear()
        return _merge(results, tasks, out, study, name, stdout, stderr)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        if sigterm:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _start(
    path: str,
    export: bool,
    study: str,
    name: str,
    folder: str,
    jobs: int,
    progress: bool,
    workers: list[multiprocessing.process.BaseProcess],
) -> list[Task]:
    """Start the workers (appended to ``workers`` as they start, so that all of them are ended
    should a later one fail to start); their tasks."""
    # Fork where there is one: a worker starts in milliseconds with the protocol already loaded,
    # and the parent holds nothing large yet. Elsewhere the platform's default.
    context = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else None)
    counters = context.RawArray("q", 2 * jobs) if progress else None
    threshold = gc.get_threshold()
    tasks = [Task(i, jobs, path, export, study, name, folder, os.getpid(), threshold, counters) for i in range(jobs)]
    # A forked child flushes its copy of the standard streams' buffers when it ends: empty them
    # first, or anything pending would be written once more per worker.
    sys.stdout.flush()
    sys.stderr.flush()
    for task in tasks:
        worker = context.Process(target=work, args=(task,), name=f"trialguard-replay-{task.index + 1}", daemon=True)
        worker.start()
        workers.append(worker)
    return tasks


def _wait(workers: list[multiprocessing.process.BaseProcess], tasks: list[Task], progress: Progress | None) -> None:
    """Wait for every worker, drawing progress; the first one to die fails the replay."""
    jobs = len(workers)
    pending = {worker.sentinel: i for i, worker in enumerate(workers)}
    counters = tasks[0].counters

    def events() -> int:
        return int(sum(counters[2 * i + 1] for i in range(jobs)))

    def position() -> int:  # every worker reads the whole input: the slowest says how far we are
        return int(min(counters[2 * i] for i in range(jobs)))

    while pending:
        ready = multiprocessing.connection.wait(list(pending), timeout=PROGRESS_INTERVAL)
        for sentinel in [s for s in pending if s in ready]:
            i = pending.pop(sentinel)
            workers[i].join()
            code = workers[i].exitcode
            if code != 0 or not tasks[i].results.exists():
                how = f"killed by {signal.Signals(-code).name}" if code and code < 0 else f"exit status {code}"
                raise WorkerError(f"worker {i + 1} of {jobs} died ({how}); nothing was written")
        if progress is not None and pending:
            progress.update(events(), position)


def _merge(
    results: list[dict[str, Any]],
    tasks: list[Task],
    out: str | None,
    study: str,
    name: str,
    stdout: IO[bytes],
    stderr: TextIO,
) -> int:
    """Write the workers' entries in line order, then the summary of their results combined."""
    failures = [r["failure"] for r in results if r["failure"]]
    if fatal := next((f["message"] for f in failures if f["kind"] == "fatal"), None):
        return fail(stderr, f"{fatal}; nothing was written")
    # A malformed export line stops --jobs 1 after writing what came before: every worker
    # stopped at that line too, so their entries are exactly what came before.
    partial = failures[0]["message"] if failures else None
    try:
        if out is None:
            _write_entries(tasks, name, stdout, stderr)
            stdout.flush()
            if partial:
                return fail(stderr, partial)
        else:
            with atomic_output(Path(out)) as f:
                _write_entries(tasks, name, f, stderr)
                if partial:
                    raise _AbandonError  # leaves no file at ``out``, as --jobs 1
    except _AbandonError:
        return fail(stderr, str(partial))
    except BrokenPipeError:
        raise  # the reader of stdout left (`| head`): the caller ends quietly
    except OSError as e:
        return fail(stderr, f"{e.filename or name}: {e.strerror or e}")
    report, replay = _combined(results, study, name)
    stderr.write(format_summary(report, replay))
    return EXIT_REJECTED if report.rejected else EXIT_OK


class _AbandonError(Exception):
    """Abandon the output file."""


def _write_entries(tasks: list[Task], name: str, out: BinaryWriter, stderr: TextIO) -> None:
    # Entries of one line all come from one worker, in its order; heapq.merge keeps that order.
    for number, kind, payload in heapq.merge(*(read_entries(t.entries) for t in tasks), key=itemgetter(0)):
        if kind == FINDING:
            out.write(payload)
        else:
            reject(name, number, payload.decode("utf-8", "surrogatepass"), stderr, None)


def _combined(results: list[dict[str, Any]], study: str, name: str) -> tuple[Report, Replay]:
    """The report and the replay counts of the whole input, from the workers' shares."""
    replay = Replay(versions_for(study))
    report = Report(name, lines=sum(r["lines"] for r in results))
    for r in results:
        replay.processed += r["processed"]
        replay.duplicates += r["duplicates"]
        replay.findings_by_rule.update(r["findings_by_rule"])
        replay.superseded += r["superseded"]
        replay.unmatched_corrections += r["unmatched_corrections"]
    report.contract_errors = _rejections([r["contract_errors"] for r in results])
    report.core_errors = _rejections([r["core_errors"] for r in results])
    return report, replay


def _rejections(shares: list[list[Any]]) -> Rejections:
    """Each worker listed its first rejected lines: the first of all are among them."""
    first = sorted(n for _, listed in shares for n in listed)
    combined = Rejections(count=sum(count for count, _ in shares))
    combined.first = first[:LISTED_ERRORS]
    return combined
