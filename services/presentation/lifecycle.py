"""Where a participant stands in the study, from their events: the dashboard's timeline and the
audit's SDTM export (each finding's stage) say it the same way."""

from __future__ import annotations

from typing import Any

from protocol.model import Protocol

STAGES = (
    ("registered", ("ParticipantRegistered",)),
    ("consented", ("ConsentSigned",)),
    (
        "screening",
        (
            "ScreeningLabResulted",
            "DiseaseActivityScored",
            "PerformanceStatusAssessed",
            "KidneyBiopsyReported",
            "SLEClassificationScored",
            "MedicalHistoryRecorded",
        ),
    ),
    ("eligible", ("EligibilityConfirmed",)),
    ("enrolled", ("ParticipantEnrolled",)),
    ("leukapheresis", ("LeukapheresisPerformed",)),
    ("lymphodepletion", ("LymphodepletionAdministered",)),
    ("infused", ("CarTInfused",)),
    ("follow-up", ("FollowUpVisitCompleted",)),
)
"""The lifecycle in order, and the events that show a participant reached each step."""

RANK = {event_type: rank for rank, (_, types) in enumerate(STAGES) for event_type in types}


def lifecycle(events: list[dict[str, Any]], protocol: Protocol) -> str:
    """Where the participant stands, from their events (a transition out of order still counts)."""
    rank, stage = -1, "unknown"
    relapsed = withdrawn = completed = screen_failed = False
    last_visit = protocol.schedule[-1].code if protocol.schedule else None
    for event in events:
        kind, payload = event["event_type"], event["body"].get("payload", {})
        if kind in RANK and RANK[kind] > rank:
            rank, stage = RANK[kind], STAGES[RANK[kind]][0]
        if kind == "EligibilityConfirmed" and payload.get("eligible") is False:
            screen_failed = True
        relapsed |= kind == "RelapseReported"
        withdrawn |= kind == "ParticipantWithdrawn"
        completed |= kind == "FollowUpVisitCompleted" and payload.get("visit") == last_visit
    if screen_failed and rank <= RANK["EligibilityConfirmed"]:
        stage = "screen-failed"
    if stage == "enrolled":
        arm = next((e["body"]["payload"].get("arm") for e in events if e["event_type"] == "ParticipantEnrolled"), None)
        stage = f"enrolled ({arm})" if arm else stage
    if completed:
        stage = "completed"
    if relapsed and not withdrawn:
        stage += ", relapsed (still followed)"
    return "withdrawn (after " + stage + ")" if withdrawn else stage
