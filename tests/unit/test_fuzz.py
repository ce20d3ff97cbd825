"""Fuzzing the contract and the core with hostile input made from valid events (tests/hostile.py).

Property: whatever the bytes, ``parse_event`` either rejects them with a ContractError whose every
violation names a field, whose text is bounded and whose log summary carries nothing of the input,
or returns an event that the processing step takes, in the participant's context, without raising;
the findings encode and the state snapshot restores.

Examples per run come from the hypothesis profile (tests/conftest.py): a few hundred every day,
10,000 with ``HYPOTHESIS_PROFILE=fuzz``. The seed is printed at the end of the run; set
``FUZZ_SEED`` to replay it.
"""

from __future__ import annotations

import functools
import json
import os
import random
import re
import uuid
from dataclasses import dataclass

import pytest
from hypothesis import given, seed
from hypothesis import strategies as st
from pydantic import BaseModel

from contracts import (
    EVENT_TYPES,
    MAX_EVENT_BYTES,
    MAX_REASON_CHARS,
    ContractError,
    FindingSuperseded,
    encode,
    parse_event,
    participant_events,
)
from events import process, snapshots
from protocol import ParticipantState
from protocol.nct06904729 import PROTOCOL
from services import simulator
from tests.builders import example_lines
from tests.hostile import MARKER, MAX_RECORD_BYTES, TALLY, Recipe, hostile_records, recipes, rejected

FUZZ_SEED = int(os.environ.get("FUZZ_SEED") or int.from_bytes(os.urandom(4), "big"))
_LOGGABLE = {"<message>", "<extra>"} | {
    name
    for model in vars(participant_events).values()
    if isinstance(model, type) and issubclass(model, BaseModel)
    for name in model.model_fields
}


@dataclass(frozen=True)
class Corpus:
    """Valid participant logs, their lines flattened, and each participant's state before each line."""

    logs: list[list[bytes]]
    lines: list[bytes]
    where: list[tuple[int, int]]  # line → (log, position in it)
    before: list[list[ParticipantState]]  # log, position → the state before that line


@functools.cache
def corpus() -> Corpus:
    """The shared example's three participants and eight simulated ones (every rule injectable)."""
    logs: dict[str, list[bytes]] = {}
    for line in example_lines():
        logs.setdefault(json.loads(line)["participant_id"], []).append(line)
    for journey, events in simulator.participants(8, seed=11, rate=1.0):
        logs[journey.pid] = [line.rstrip("\n").encode() for _, line in simulator.lines(journey, events)]
    before = []
    for pid, log in logs.items():
        state, states = ParticipantState(pid), []
        for line in log:
            states.append(state)
            state = process(state, parse_event(line), PROTOCOL).state
        before.append(states)
    ordered = list(logs.values())
    where = [(n, i) for n, log in enumerate(ordered) for i in range(len(log))]
    return Corpus(ordered, [ordered[n][i] for n, i in where], where, before)


def check(data: bytes | str, base: int) -> str:
    """Parse ``data`` as the line at ``base`` of the corpus would be, and process it in that
    participant's context, then the rest of the participant's log. Returns the outcome."""
    try:
        event = parse_event(data)
    except ContractError as err:
        check_rejection(err)
        return "rejected"
    c = corpus()
    log, position = c.where[base % len(c.where)]
    state = c.before[log][position]
    if event.participant_id != state.participant_id:
        state = ParticipantState(event.participant_id)  # the service keys state by the event's participant
    rest = [parse_event(line) for line in c.logs[log][position + 1 :]]
    for n, e in enumerate([event, *rest]):
        if e.participant_id != state.participant_id:
            continue  # another participant's state: untouched by the mutated event
        try:
            step = process(state, e, PROTOCOL)
        except ContractError as err:  # valid alone, not for this participant (another site's)
            check_rejection(err)
            if n == 0:
                return "rejected"
            continue  # a mutated registration re-sited the participant: the rest is refused alike
        for finding in step.findings:
            encode(finding)
        state = step.state
        if n in (0, len(rest)):  # the service snapshots every state it changes; these two suffice here
            assert snapshots.decode(snapshots.encode(state)) == state
    return "processed"


def check_rejection(err: ContractError) -> None:
    assert err.violations
    assert all(v.field and v.kind for v in err.violations)
    reason, summary = str(err), err.summary()
    assert len(reason) <= MAX_REASON_CHARS
    assert len(summary) <= MAX_REASON_CHARS
    assert MARKER not in summary
    for v in err.violations:  # a log names contract fields, list indices and kinds: nothing of the input
        assert all(part in _LOGGABLE or part.isdigit() for part in v.log_field.split(".")), v.log_field
        assert re.fullmatch(r"[a-z0-9_]+", v.kind), v.kind
    reason.encode(), err.field.encode(), summary.encode()  # they go into headers and logs as UTF-8
    assert err.event_type is None or err.event_type in EVENT_TYPES
    assert err.event_id is None or str(uuid.UUID(err.event_id)) == err.event_id
    TALLY.kinds.update({v.kind for v in err.violations})


@seed(FUZZ_SEED)
@given(recipe=recipes(len(corpus().lines)), as_text=st.booleans())
def test_every_input_is_rejected_or_processed(recipe: Recipe, as_text: bool) -> None:
    TALLY.seed = FUZZ_SEED
    data = recipe.build(corpus().lines)
    try:
        # As text too, as a snapshot re-reads it: bytes that are not UTF-8 become lone surrogates.
        outcome = check(data.decode("utf-8", "surrogateescape") if as_text else data, recipe.base)
    except BaseException:
        TALLY.outcomes["other"] += 1
        raise
    TALLY.outcomes[outcome] += 1


# --- the records a live test publishes ----------------------------------------------------------


def test_hostile_records_are_all_rejected_and_fit_a_broker() -> None:
    records = hostile_records(random.Random(7), example_lines(), 60)
    assert len(records) == 60
    assert all(rejected(r) and len(r) < MAX_RECORD_BYTES for r in records)
    huge, deep, not_utf8, nul = records[:4]
    assert 500_000 <= len(huge) < 600_000
    assert deep.count(b"[") >= 200_000
    with pytest.raises(UnicodeDecodeError):
        not_utf8.decode("utf-8")
    assert b"\x00" in nul
    assert hostile_records(random.Random(7), example_lines(), 60) == records


# --- regressions found by the fuzzer ---------------------------------------------------------------


def test_an_accepted_event_near_the_size_limit_restores_from_its_snapshot() -> None:
    # The snapshot keeps events in their wire form and re-reads them: written out again with
    # non-ASCII escaped and every omitted optional field as null, a 58 KB history is 107 KB.
    flags = ("remission_achieved", "relapse_after_remission", "proteinuria_in_remission", "prior_car_t",
             "kidney_transplant", "malignancy_within_5y", "other_trial_within_3m", "congenital_ig_deficiency",
             "serious_drug_allergy", "uncontrolled_infection", "severe_organ_dysfunction",
             "severe_cns_or_psychiatric", "gilbert_syndrome")  # fmt: skip
    treatments = [{"agent": "霉酚酸酯" * 20, "start": "2020-01-01"}] * 220
    line = corpus().logs[0][0]
    event = json.loads(line) | {
        "event_type": "MedicalHistoryRecorded",
        "payload": {"immunosuppressants": treatments, **dict.fromkeys(flags, False)},
    }
    data = json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode()
    assert len(data) <= MAX_EVENT_BYTES
    assert check(data, 0) == "processed"


@pytest.mark.parametrize(
    ("event_type", "change", "rule_id", "fact", "values"),
    [
        # 2 cells/kg: a dose ratio of 4e-06 or 2e-06 (low or high dose), which durable_rules could
        # not read (error 204 on the whole fact set).
        ("CarTInfused", {"total_cells": 100.0, "weight_kg": 50.0}, "DOSE-01", "dose_ratio", (4e-06, 2e-06)),
        ("RelapseReported", {"upcr_mg_mg": 1e-05}, "RELAPSE", "upcr_mg_mg", (1e-05,)),
    ],
)
def test_a_fact_python_writes_as_1e_05_is_judged_and_quoted_exactly(
    event_type: str, change: dict[str, float], rule_id: str, fact: str, values: tuple[float, ...]
) -> None:
    c = corpus()
    base = next(n for n, line in enumerate(c.lines) if json.loads(line)["event_type"] == event_type)
    event = json.loads(c.lines[base])
    event["payload"].update(change)
    log, position = c.where[base]
    step = process(c.before[log][position], parse_event(json.dumps(event)), PROTOCOL)
    found = {f.rule_id: f.evidence for f in step.findings if not isinstance(f, FindingSuperseded)}
    assert found[rule_id][fact] in values  # the exact value, not the engine's neighbour of it
