"""``trialguard simulate`` to files: a cohort's events in log order and its ground-truth labels.

Events are written in log order (event time, then participant, then the participant's own order)
through a bucket sort on disk: memory does not grow with the cohort, and the work grows linearly
with it.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import IO, TextIO

from services.files import atomic_text
from services.simulator.clock import DAY
from services.simulator.cohort import Summary, cohort_problem, participants
from services.simulator.wire import lines

_T_OFFSET = 1000 * DAY
"""Added to event times in sort keys so that they are never negative (biopsies come before day 0)."""
_BUCKET_MINUTES = 28 * DAY
_KEY = 21  # characters of the sort key: 8 time, 8 participant, 5 sequence


def simulate(
    count: int,
    seed: int,
    out: Path,
    labels_path: Path | None = None,
    rate: float = 0.3,
    *,
    progress: TextIO | None = None,
) -> Summary:
    """Write a cohort's events (JSON lines, log order) to ``out`` and its labels to ``labels_path``.

    Args:
        count: participants.
        seed: the seed: the same seed gives byte-identical files.
        out: the events file, written complete or not at all.
        labels_path: the ground truth: ``{participant_id: [rule ids, sorted, with repeats]}``.
        rate: the probability that a participant has a deviation injected.
        progress: where to report progress (a line per 10 % of participants), or None.

    Returns:
        What was written.
    """
    started = time.monotonic()
    summary = Summary()
    labels: dict[str, list[str]] = {}
    step = max(count // 10, 1)
    with tempfile.TemporaryDirectory(prefix=".simulate.", dir=out.parent) as scratch:
        buckets: dict[int, IO[str]] = {}
        try:
            for journey, events in participants(count, seed, rate):
                for k, (t, line) in enumerate(lines(journey, events)):
                    key = t + _T_OFFSET
                    bucket = buckets.get(key // _BUCKET_MINUTES)
                    if bucket is None:
                        name = os.path.join(scratch, f"{key // _BUCKET_MINUTES:05d}")
                        bucket = buckets[key // _BUCKET_MINUTES] = open(name, "w", encoding="utf-8", newline="\n")  # noqa: SIM115
                    bucket.write(f"{key:08d}{journey.index:08d}{k:05d}{line}")
                    summary.events += 1
                summary.add(journey)
                labels[journey.pid] = sorted(journey.labels)
                if progress is not None and (journey.index + 1) % step == 0 and count >= 1000:
                    done = journey.index + 1
                    progress.write(f"simulate: {done * 100 // count}% ({done:,} of {count:,} participants, "
                                   f"{summary.events:,} events)\n")  # fmt: skip
                    progress.flush()
        finally:
            for bucket in buckets.values():
                bucket.close()
        if progress is not None and count >= 1000:
            progress.write(f"simulate: writing {summary.events:,} events in log order to {out}\n")
            progress.flush()
        with atomic_text(out) as f:
            for number in sorted(buckets):
                with open(os.path.join(scratch, f"{number:05d}"), encoding="utf-8") as bucket:
                    keyed = bucket.readlines()
                keyed.sort()
                f.writelines(line[_KEY:] for line in keyed)
    if labels_path is not None:
        with atomic_text(labels_path) as f:
            f.write(json.dumps(labels, sort_keys=True, indent=2) + "\n")
    summary.seconds = time.monotonic() - started
    return summary


def run(count: int, seed: int, out: str, labels: str | None, rate: float, *, stderr: TextIO) -> int:
    """``trialguard simulate``: 0 when the files were written, 2 for a usage or I/O error."""
    problem = cohort_problem(count, seed, rate)
    if problem is not None:
        stderr.write(f"trialguard simulate: {problem}\n")
        return 2
    paths = [Path(out)] + ([Path(labels)] if labels else [])
    if labels and Path(labels).resolve() == Path(out).resolve():
        stderr.write("trialguard simulate: --labels and --out must be different files\n")
        return 2
    for path in paths:
        if path.is_dir() or not path.parent.is_dir():
            stderr.write(f"trialguard simulate: {path}: not a file in an existing folder\n")
            return 2
    try:
        summary = simulate(count, seed, Path(out), Path(labels) if labels else None, rate, progress=stderr)
    except OSError as e:
        stderr.write(f"trialguard simulate: {e.filename or out}: {e.strerror or e}\n")
        return 2
    stderr.write(summary.render(seed, rate))
    return 0
