"""Replay: run a protocol over a whole event log, participant by participant, in log order.

Pure: the same events in the same order always give the same findings. It is the step the live
rules service runs (``events.process``); only where the state lives differs (here one dict for
the whole log, there one per Kafka partition).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from contracts import ContractError, FindingSuperseded, Output, ParticipantEvent, Violation
from events.bounds import MAX_KEPT_FACTS
from events.decide import process
from protocol import ParticipantState, ProtocolHistory
from protocol.versions import Judge, history_of


@dataclass
class Replay:
    """The state of a replay in progress.

    Attributes:
        protocol: what the log is judged under: one protocol version, or a study's history of
            versions (each event under the version in force at its ``occurred_at`` and site).
        states: each participant's state after the events fed so far.
        processed: events that were new (and so went through the protocol).
        duplicates: events whose id the participant had seen before; they change nothing.
        findings_by_rule: how many findings each rule id has raised.
        superseded: how many FindingSuperseded records lab corrections gave.
        unmatched_corrections: lab corrections and retractions that named no result kept for
            their participant (processed, changing nothing: ``events.corrections``).
        max_kept_facts: the facts one participant's state keeps at most (``events.bounds``);
            the default but in tests, so that a replay decides as the live service does.
    """

    protocol: Judge
    states: dict[str, ParticipantState] = field(default_factory=dict)
    processed: int = 0
    duplicates: int = 0
    findings_by_rule: Counter[str] = field(default_factory=Counter)
    superseded: int = 0
    unmatched_corrections: int = 0
    max_kept_facts: int = MAX_KEPT_FACTS

    @property
    def history(self) -> ProtocolHistory:
        """The versions the log is judged under."""
        return history_of(self.protocol)

    def feed(self, event: ParticipantEvent) -> list[Output]:
        """Process the next event of the log.

        Returns:
            The findings it raises, in catalogue order (after a lab correction, the
            FindingSuperseded records first).

        Raises:
            ContractError: the event belongs to another study than the protocol's (judging it
                under this protocol would raise findings with the wrong study and version), or
                names another site than the participant's registered site, corrects a result into
                one the contract refuses, or would overfill the participant's state
                (``events.process``). State is left as it was.
        """
        if event.study_id != self.protocol.study_id:
            problem = f"{event.study_id!r} is not the study being replayed ({self.protocol.study_id!r})"
            raise ContractError(
                [Violation("study_id", problem, "study_mismatch")],
                event_type=event.event_type,
                event_id=str(event.event_id),
            )
        pid = event.participant_id
        state = self.states.get(pid) or ParticipantState(pid)
        step = process(state, event, self.protocol, max_kept_facts=self.max_kept_facts)
        # Counted only once the step succeeded, so an event the core fails on leaves no trace.
        self.states[pid] = step.state
        if step.duplicate:
            self.duplicates += 1
        else:
            self.processed += 1
        if step.unmatched:
            self.unmatched_corrections += 1
        for f in step.findings:
            if isinstance(f, FindingSuperseded):
                self.superseded += 1
            else:
                self.findings_by_rule[f.rule_id] += 1
        return step.findings
