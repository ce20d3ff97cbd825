"""Safety alerts: CRS (ASTCT) and ICANS (adult ASTCT ICANS) of grade 3 or higher, acute GVHD
(MAGIC 2016) or chronic GVHD (NCCN 2020 v1.0, NIH severity) of any grade, and any serious adverse
event. Each names the day after infusion when there was one (the safety outcome runs to 12 months)."""

from __future__ import annotations

from durable.lang import m

from contracts import ParticipantEvent
from contracts.participant_events import AdverseEventReported
from protocol.model import Facts, RuleSpec, alert, facts_on
from protocol.nct06946485.parameters import SEVERE_GRADE
from protocol.nct06946485.terms import Terms
from protocol.state import ParticipantState


@facts_on("AdverseEventReported")
def safety_facts(_terms: Terms, state: ParticipantState, event: ParticipantEvent) -> Facts:
    if not isinstance(event, AdverseEventReported):
        return {}
    ae = event.payload
    facts: Facts = {"ctcae_grade": ae.ctcae_grade, "serious": ae.serious}
    if state.infusions_at:
        facts["days_after_infusion"] = (event.occurred_at.date() - state.infusions_at[0].date()).days
    for name in ("crs_grade", "icans_grade", "gvhd_acute_grade", "gvhd_chronic_severity"):
        if (value := getattr(ae, name)) is not None:
            facts[name] = value
    return facts


def rules(terms: Terms) -> tuple[RuleSpec, ...]:
    """The section's alerts in a version: the alert grade compiled into the conditions."""
    severe = terms[SEVERE_GRADE]
    return (
        alert(
            "SAFETY-CRS3",
            reference="Primary outcome 2: CRS by the ASTCT consensus grading",
            term=f"Cytokine release syndrome grade {severe} or higher",
            when=m.crs_grade >= severe,
            evidence=("crs_grade", "ctcae_grade", "serious", "days_after_infusion"),
            parameters=(SEVERE_GRADE,),
        ),
        alert(
            "SAFETY-ICANS3",
            reference="Primary outcome 2: ICANS by the adult ASTCT ICANS consensus grading",
            term=f"ICANS grade {severe} or higher",
            when=m.icans_grade >= severe,
            evidence=("icans_grade", "ctcae_grade", "serious", "days_after_infusion"),
            parameters=(SEVERE_GRADE,),
        ),
        alert(
            "SAFETY-GVHD",
            reference="Primary outcome 2: acute GVHD by MAGIC 2016, chronic GVHD by NCCN 2020 v1.0",
            term="Graft-versus-host disease reported (an allogeneic product)",
            when=(m.gvhd_acute_grade >= 1) | +m.gvhd_chronic_severity,
            evidence=("gvhd_acute_grade", "gvhd_chronic_severity", "ctcae_grade", "serious", "days_after_infusion"),
        ),
        alert(
            "SAFETY-SAE",
            reference="Primary outcome 2: serious adverse events",
            term="Serious adverse event: expedited reporting starts",
            when=m.serious == True,
            evidence=("ctcae_grade", "crs_grade", "icans_grade", "gvhd_acute_grade", "days_after_infusion"),
        ),
    )
