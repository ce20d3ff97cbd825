"""Safety: alerts for the trial team. CRS or ICANS grade >= 3 (ASTCT), any serious adverse event
(the expedited reporting clock starts), and relapse."""

from __future__ import annotations

from durable.lang import m

from contracts import ParticipantEvent
from contracts.participant_events import AdverseEventReported, RelapseReported
from protocol.model import Facts, RuleSpec, alert, facts_on
from protocol.nct06904729.terms import Terms
from protocol.state import ParticipantState

SEVERE_GRADE = 3


@facts_on("AdverseEventReported", "RelapseReported")
def safety_facts(_terms: Terms, state: ParticipantState, event: ParticipantEvent) -> Facts:
    if isinstance(event, AdverseEventReported):
        facts: Facts = {"ctcae_grade": event.payload.ctcae_grade, "serious": event.payload.serious}
        if event.payload.crs_grade is not None:
            facts["crs_grade"] = event.payload.crs_grade
        if event.payload.icans_grade is not None:
            facts["icans_grade"] = event.payload.icans_grade
        return facts
    if isinstance(event, RelapseReported):
        facts = {"relapse": True, "infused": bool(state.infusions_at)}
        if event.payload.upcr_mg_mg is not None:
            facts["upcr_mg_mg"] = event.payload.upcr_mg_mg
        return facts
    return {}


def rules(terms: Terms) -> tuple[RuleSpec, ...]:
    """The section's alerts in a version (ASTCT's grade 3 is not a protocol parameter)."""
    return (
        alert(
            "SAFETY-CRS3",
            reference="Safety: ASTCT CRS grading",
            term="Cytokine release syndrome grade 3 or higher",
            when=m.crs_grade >= SEVERE_GRADE,
            evidence=("crs_grade", "ctcae_grade", "serious"),
        ),
        alert(
            "SAFETY-ICANS3",
            reference="Safety: ASTCT ICANS grading",
            term="ICANS grade 3 or higher",
            when=m.icans_grade >= SEVERE_GRADE,
            evidence=("icans_grade", "ctcae_grade", "serious"),
        ),
        alert(
            "SAFETY-SAE",
            reference="Safety: serious adverse events",
            term="Serious adverse event: expedited reporting starts",
            when=m.serious == True,
            evidence=("ctcae_grade", "crs_grade", "icans_grade"),
        ),
        alert(
            "RELAPSE",
            reference="Outcome: relapse",
            term="Relapse reported",
            when=m.relapse == True,
            evidence=("infused", "upcr_mg_mg"),
        ),
    )
