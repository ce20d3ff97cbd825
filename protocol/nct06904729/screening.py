"""Screening: which assessment counts at enrollment, and ELIG-MISSING when a required one is
absent or older than the screening window.

The latest result inside the window counts (DESIGN.md). The window (ASSUMPTION, 28 days before
enrollment) applies to screening labs, SLEDAI-2K and ECOG; the EULAR/ACR classification, the
kidney biopsy (Inclusion 3 has its own window) and the medical history are history.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Sequence
from typing import TypeVar

from durable.lang import m

from contracts import Category, ParticipantEvent, Severity
from contracts.participant_events import ParticipantEnrolled, ScreeningLabResulted
from contracts.units import to_canonical
from protocol.clinical import is_positive
from protocol.model import Facts, RuleSpec, deviation, facts_on
from protocol.nct06904729.parameters import EQUIVOCAL_IS_POSITIVE, SCREENING_WINDOW_DAYS
from protocol.nct06904729.terms import Terms
from protocol.state import ParticipantState

ENROLLED = m.event_type == "ParticipantEnrolled"
"""Eligibility is decided when a participant is enrolled, once."""

REQUIRED_LABS = (
    "lymphocytes",
    "wbc",
    "neutrophils",
    "hemoglobin",
    "alt",
    "ast",
    "total_bilirubin",
    "creatinine",
    "inr",
    "pt",
    "ana",
    "cd19",
    "hbsag",
    "anti_hbc",
    "anti_hcv",
    "hiv",
    "syphilis",
)
"""Screening labs required before enrollment ("cd19" is a count or a percentage by flow)."""

NEEDS_ULN = ("alt", "ast", "total_bilirubin", "pt")
"""Labs whose criterion is a multiple of the laboratory's ULN: a result without one cannot decide it."""

ANALYTES = {"cd19": ("cd19_count", "cd19_percent")}
"""Required labs that more than one analyte of the unit table answers."""

E = TypeVar("E", bound=ParticipantEvent)


def in_window(terms: Terms, at: dt.datetime, enrolled_at: dt.datetime) -> bool:
    """Whether an assessment at ``at`` counts for an enrollment at ``enrolled_at`` (both ends in)."""
    return enrolled_at - terms.screening_window <= at <= enrolled_at


def latest_in_window(terms: Terms, events: Sequence[E], enrolled_at: dt.datetime) -> E | None:
    """The latest assessment inside the window (the later in the log among equal times)."""
    best: E | None = None
    for e in events:
        if in_window(terms, e.occurred_at, enrolled_at) and (best is None or e.occurred_at >= best.occurred_at):
            best = e
    return best


def screening_lab(
    terms: Terms, state: ParticipantState, lab: str, enrolled_at: dt.datetime
) -> ScreeningLabResulted | None:
    """The result of a required lab that counts at enrollment."""
    # Every section deciding an enrollment asks for the same labs of the same state, about forty
    # questions in all: each answer is worked out once per state, enrollment time and version.
    memo = _LAST_ASKED
    if getattr(memo, "state", None) is not state or memo.at != enrolled_at or memo.terms is not terms:
        memo.state, memo.at, memo.terms, memo.answers = state, enrolled_at, terms, {}
    answers: dict[str, ScreeningLabResulted | None] = memo.answers
    if lab not in answers:
        results = [r for analyte in ANALYTES.get(lab, (lab,)) for r in state.labs.get(analyte, ())]
        results.sort(key=lambda r: r.occurred_at)  # stable: log order among equal times
        answers[lab] = latest_in_window(terms, results, enrolled_at)
    return answers[lab]


_LAST_ASKED = threading.local()
"""The state ``screening_lab`` answered for last (per thread), the version's terms it answered
under, and its answers by lab."""


def numeric(result: ScreeningLabResulted | None) -> float | None:
    """A result's number in its analyte's canonical unit (None when absent or qualitative)."""
    if result is None or isinstance(result.payload.value, str):
        return None
    return to_canonical(result.payload.loinc, result.payload.value, result.payload.unit)


def detected(result: ScreeningLabResulted) -> bool:
    """A screen is positive, or a quantity is above its normal range (above zero without one)."""
    value, uln = result.payload.value, result.payload.uln
    if isinstance(value, str):
        return is_positive(value)
    return value > (uln if uln is not None else 0)


def _missing(terms: Terms, state: ParticipantState, enrolled_at: dt.datetime) -> tuple[list[str], list[str]]:
    missing: list[str] = []
    outdated: list[str] = []

    def require(name: str, present: bool, ever: bool) -> None:
        if not present:
            (outdated if ever else missing).append(name)

    registration = state.registration
    require("registration", registration is not None, False)
    labs = {lab: screening_lab(terms, state, lab, enrolled_at) for lab in REQUIRED_LABS}
    for lab, result in labs.items():
        ever = any(state.labs.get(a) for a in ANALYTES.get(lab, (lab,)))
        require(lab, result is not None, ever)
    for lab in NEEDS_ULN:
        result = labs[lab]
        if result is not None and result.payload.uln is None:
            missing.append(f"{lab}_uln")
    if (labs["hbsag"] is not None and detected(labs["hbsag"])) or (
        labs["anti_hbc"] is not None and detected(labs["anti_hbc"])
    ):
        require(
            "hbv_dna", screening_lab(terms, state, "hbv_dna", enrolled_at) is not None, bool(state.labs.get("hbv_dna"))
        )
    if labs["anti_hcv"] is not None and detected(labs["anti_hcv"]):
        require(
            "hcv_rna", screening_lab(terms, state, "hcv_rna", enrolled_at) is not None, bool(state.labs.get("hcv_rna"))
        )
    require("sledai_2k", latest_in_window(terms, state.sledai, enrolled_at) is not None, bool(state.sledai))
    require("eular_acr_2019", state.eular is not None, False)
    require("kidney_biopsy", state.biopsy is not None, False)
    require("ecog", latest_in_window(terms, state.ecog, enrolled_at) is not None, bool(state.ecog))
    require("medical_history", state.history is not None, False)
    return missing, outdated


@facts_on("ParticipantEnrolled")
def screening_facts(terms: Terms, state: ParticipantState, event: ParticipantEvent) -> Facts:
    if not isinstance(event, ParticipantEnrolled) or state.enrollment is not None:
        return {}  # eligibility is decided once, at the first enrollment
    missing, outdated = _missing(terms, state, event.occurred_at)
    return {
        "missing": missing,
        "outdated": outdated,
        "missing_or_outdated": len(missing) + len(outdated),
        "screening_window_days": terms[SCREENING_WINDOW_DAYS],
    }


def rules(terms: Terms) -> tuple[RuleSpec, ...]:
    """The section's rules in a version (none compares with a parameter value)."""
    return (
        deviation(
            "ELIG-MISSING",
            category=Category.ELIGIBILITY,
            severity=Severity.IMPORTANT,
            reference="Eligibility: screening assessments",
            term="Enrolled while a required screening assessment was absent or older than the screening window",
            when=ENROLLED & (m.missing_or_outdated > 0),
            evidence=("missing", "outdated", "screening_window_days"),
            # the window decides what counts; a detected hepatitis screen requires its HBV DNA or HCV RNA
            parameters=(SCREENING_WINDOW_DAYS, EQUIVOCAL_IS_POSITIVE),
        ),
    )
