"""Properties of the processing step over whole logs (hypothesis): replay is deterministic, a
duplicated event changes nothing, and participants do not influence each other."""

from __future__ import annotations

from collections import defaultdict

from hypothesis import given, settings
from hypothesis import strategies as st

from contracts import ParticipantEvent, encode
from tests.journey import replay
from tests.unit.test_rules import CASES

Log = list[ParticipantEvent]


@st.composite
def logs(draw: st.DrawFn) -> Log:
    """A few participants, each living one journey of the rule table, interleaved at random
    (each participant's own events stay in order, as a Kafka partition keeps them)."""
    picks = draw(st.lists(st.integers(0, len(CASES) - 1), min_size=1, max_size=4))
    queues = [
        [e.model_copy(update={"participant_id": f"P-{n:04d}"}) for e in CASES[case][1]] for n, case in enumerate(picks)
    ]
    log: Log = []
    while any(queues):
        queue = draw(st.sampled_from([q for q in queues if q]))
        log.append(queue.pop(0))
    return log


def outputs(log: Log) -> list[bytes]:
    return [encode(f) for f in replay(log)]


def by_participant(log: Log) -> dict[str, list[bytes]]:
    out: dict[str, list[bytes]] = defaultdict(list)
    for f in replay(log):
        out[f.participant_id].append(encode(f))
    return dict(out)


@settings(max_examples=40, deadline=None)
@given(logs())
def test_replay_is_deterministic(log: Log) -> None:
    assert outputs(log) == outputs(log)


@settings(max_examples=40, deadline=None)
@given(logs(), st.data())
def test_a_duplicated_event_changes_nothing(log: Log, data: st.DataObject) -> None:
    original = data.draw(st.integers(0, len(log) - 1))
    copy_at = data.draw(st.integers(original + 1, len(log)))
    duplicated = [*log[:copy_at], log[original], *log[copy_at:]]
    assert outputs(duplicated) == outputs(log)


@settings(max_examples=40, deadline=None)
@given(logs())
def test_a_participants_findings_do_not_depend_on_the_others(log: Log) -> None:
    alone = {
        pid: by_participant([e for e in log if e.participant_id == pid]).get(pid, [])
        for pid in {e.participant_id for e in log}
    }
    together = by_participant(log)
    assert {pid: together.get(pid, []) for pid in alone} == alone
