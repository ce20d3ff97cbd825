"""Screening: which assessment counts at enrollment, and ELIG-MISSING when one that a criterion of
the record needs is absent or older than the screening window (ASSUMPTION, 28 days)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TypeVar

from durable.lang import m

from contracts import Category, ParticipantEvent, Severity
from contracts.participant_events import ParticipantEnrolled, ScreeningLabResulted
from contracts.units import to_canonical
from protocol.model import Facts, RuleSpec, deviation, facts_on
from protocol.nct06946485.parameters import SCREENING_WINDOW_DAYS
from protocol.nct06946485.terms import Terms
from protocol.state import ParticipantState

ENROLLED = m.event_type == "ParticipantEnrolled"
"""Eligibility is decided when a participant is enrolled, once."""

REQUIRED_LABS = (
    "wbc",
    "neutrophils",
    "hemoglobin",
    "alt",
    "ast",
    "total_bilirubin",
    "creatinine",
    "inr",
    "pt",
    "lvef",
)
"""The results Inclusion 6 is decided from (LVEF is a coded assessment of the unit table)."""

NEEDS_ULN = ("alt", "ast", "total_bilirubin", "pt")
"""Results whose criterion is a multiple of the laboratory's ULN."""

E = TypeVar("E", bound=ParticipantEvent)


def latest_in_window(terms: Terms, events: Sequence[E], enrolled_at: dt.datetime) -> E | None:
    """The latest assessment inside the window before enrollment (both ends in; later in the log wins ties)."""
    best: E | None = None
    for e in events:
        if enrolled_at - terms.screening_window <= e.occurred_at <= enrolled_at and (
            best is None or e.occurred_at >= best.occurred_at
        ):
            best = e
    return best


def screening_lab(
    terms: Terms, state: ParticipantState, lab: str, enrolled_at: dt.datetime
) -> ScreeningLabResulted | None:
    """The result of a lab that counts at enrollment."""
    results = sorted(state.labs.get(lab, ()), key=lambda r: r.occurred_at)
    return latest_in_window(terms, results, enrolled_at)


def numeric(result: ScreeningLabResulted | None) -> float | None:
    """A result's number in its analyte's canonical unit (None when absent or qualitative)."""
    if result is None or isinstance(result.payload.value, str):
        return None
    return to_canonical(result.payload.loinc, result.payload.value, result.payload.unit)


def _missing(terms: Terms, state: ParticipantState, at: dt.datetime) -> tuple[list[str], list[str]]:
    missing: list[str] = []
    outdated: list[str] = []

    def require(name: str, present: bool, ever: bool) -> None:
        if not present:
            (outdated if ever else missing).append(name)

    require("registration", state.registration is not None, False)
    for lab in REQUIRED_LABS:
        result = screening_lab(terms, state, lab, at)
        require(lab, result is not None, bool(state.labs.get(lab)))
        if lab in NEEDS_ULN and result is not None and result.payload.uln is None:
            missing.append(f"{lab}_uln")
    require("sledai_2k", latest_in_window(terms, state.sledai, at) is not None, bool(state.sledai))
    require("bilag_2004", latest_in_window(terms, state.bilag, at) is not None, bool(state.bilag))
    require("eular_acr_2019", state.eular is not None, False)
    require("medical_history", state.history is not None, False)
    return missing, outdated


@facts_on("ParticipantEnrolled")
def screening_facts(terms: Terms, state: ParticipantState, event: ParticipantEvent) -> Facts:
    if not isinstance(event, ParticipantEnrolled) or state.enrollment is not None:
        return {}
    missing, outdated = _missing(terms, state, event.occurred_at)
    return {
        "missing": missing,
        "outdated": outdated,
        "missing_or_outdated": len(missing) + len(outdated),
        "screening_window_days": terms[SCREENING_WINDOW_DAYS],
    }


def rules(terms: Terms) -> tuple[RuleSpec, ...]:
    """The section's rules in a version."""
    return (
        deviation(
            "ELIG-MISSING",
            category=Category.ELIGIBILITY,
            severity=Severity.IMPORTANT,
            reference="Eligibility: screening assessments",
            term="Enrolled while a screening assessment a criterion needs was absent or older than the "
            "screening window",
            when=ENROLLED & (m.missing_or_outdated > 0),
            evidence=("missing", "outdated", "screening_window_days"),
            parameters=(SCREENING_WINDOW_DAYS,),
        ),
    )
