"""A scripted study's cohort (``services.simulator.scripted``) in log order, for ``simulate --live``.

``trialguard simulate --study S`` writes the cohort participant after participant; a live run
publishes in event-time order across participants instead, each participant's own order kept (a
merge of the participants' streams by ``occurred_at``, never a sort within one participant). The
events are those of the offline file for the same seed, only interleaved; the labels are the same.
"""

from __future__ import annotations

import datetime as dt
import heapq
import json
from dataclasses import dataclass
from pathlib import Path

from services.simulator.scripted import cohort


@dataclass(frozen=True)
class ScriptedSummary:
    """What was written: participants, events, participants with an injected deviation, and the
    event time of the last event (the end of the span a live run compresses)."""

    participants: int
    events: int
    injected_participants: int
    last: dt.datetime | None


def _occurred(line: str) -> dt.datetime:
    return dt.datetime.fromisoformat(json.loads(line)["occurred_at"])


def write_in_log_order(
    study: str, count: int, seed: int, rate: float, out: Path, labels: Path | None
) -> ScriptedSummary:
    """Write the cohort to ``out`` merged by event time, and its labels (as the offline run does).

    Raises:
        OSError: ``out`` or ``labels`` cannot be written.
    """
    streams: list[list[tuple[dt.datetime, int, str]]] = []
    all_labels: dict[str, list[str]] = {}
    for n, (pid, lines, rules) in enumerate(cohort(study, count, seed, rate)):
        # (time, participant number) orders ties by participant, so the merge is deterministic.
        streams.append([(_occurred(line), n, line) for line in lines])
        if rules:
            all_labels[pid] = rules
    events, last = 0, None
    with out.open("w", encoding="utf-8") as f:
        for occurred, _, line in heapq.merge(*streams, key=lambda item: (item[0], item[1])):
            f.write(line + "\n")
            events += 1
            last = occurred if last is None else max(last, occurred)
    if labels is not None:
        labels.write_text(json.dumps(all_labels, sort_keys=True, indent=2) + "\n", encoding="utf-8")
    return ScriptedSummary(len(streams), events, len(all_labels), last)
