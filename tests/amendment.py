"""A test amendment of NCT06904729 that changes a bit of everything at once, and a stream that
shows each change decided on both sides of its effective date (and at a site that adopted it early).

v1.1 (it exists only in the tests: the registry record shows no amendment) raises the
transaminase limit from 3 to 5 x ULN (a value compiled into ELIG-IN09's condition), widens the M3
visit window from +-7 to +-14 days (a schedule the follow-up facts are derived with), removes
ELIG-IN10 (the ANA titre) and adds ELIG-IN12 (haemoglobin at least 80 g/L).
"""

from __future__ import annotations

import dataclasses
import datetime as dt

from durable.lang import m

from contracts import Category, ParticipantEvent, Severity
from protocol import ProtocolHistory, Version, amended
from protocol.model import deviation
from protocol.nct06904729 import PROTOCOL
from protocol.registry import versions_for
from tests.journey import journey

EFFECTIVE = dt.date(2026, 1, 1)
"""v1.1's first day at every site but the early one."""

EARLY_SITE, EARLY_SITE_FROM = "SH-02", dt.date(2025, 7, 1)
"""A site whose ethics committee approved v1.1 before the others."""

ADDED = deviation(
    "ELIG-IN12",
    category=Category.ELIGIBILITY,
    severity=Severity.IMPORTANT,
    reference="Inclusion 12 (amendment 1)",
    term="Enrolled with a haemoglobin below 80 g/L",
    when=(m.event_type == "ParticipantEnrolled") & (m.hemoglobin < 80.0),
    evidence=("hemoglobin",),
    parameters=("screening_window_days",),
)


def widened_m3() -> tuple[object, ...]:
    """v1.0's schedule with the M3 window at +-14 days."""
    return tuple(dataclasses.replace(w, window_days=14) if w.code == "M3" else w for w in PROTOCOL.schedule)


def amendment() -> Version:
    """v1.1: the four changes, effective on ``EFFECTIVE``, at ``EARLY_SITE`` from ``EARLY_SITE_FROM``."""
    return amended(
        PROTOCOL,
        "1.1",
        EFFECTIVE,
        {"transaminase_max_uln": 5.0, "visit_schedule": widened_m3()},
        at_sites={EARLY_SITE: EARLY_SITE_FROM},
        remove_rules=["ELIG-IN10"],
        add_rules=[ADDED],
    )


V11 = amendment()
HISTORY: ProtocolHistory = versions_for("NCT06904729").with_version(V11)


def participant(pid: str, shift_days: int, site: str = "GZ-01") -> list[ParticipantEvent]:
    """A participant whose ALT is 4 x ULN, ANA titre 1:40, haemoglobin 70 g/L and M3 visit on day
    100 after infusion: ELIG-IN09, ELIG-IN10 and VISIT-01 under v1.0; ELIG-IN12 under v1.1.
    The journey (enrolled 2025-11-13, M3 on 2026-03-13) moved by ``shift_days``."""
    shift = dt.timedelta(days=shift_days)
    events = journey(
        pid=pid,
        labs={"alt": (160, "U/L", 40), "ana": ("1:40", "{titer}", None), "hemoglobin": (70, "g/L", None)},
        visits={"M3": 100},
    )
    return [
        e.model_copy(
            update={"occurred_at": e.occurred_at + shift, "recorded_at": e.recorded_at + shift, "site_id": site}
        )
        for e in events
    ]


def stream() -> list[ParticipantEvent]:
    """Four such participants, one after the other in the log."""
    return [
        *participant("P-0001", 0),  # enrolled under v1.0 (2025-11-13), M3 under v1.1 (2026-03-13)
        *participant("P-0002", -120),  # all under v1.0: M3 on 2025-11-13
        *participant("P-0003", 60),  # all under v1.1: enrolled 2026-01-12
        *participant("P-0004", -120, EARLY_SITE),  # all under v1.1: its site adopted it on 2025-07-01
    ]


EXPECTED = [
    ("P-0001", "ELIG-IN09", "1.0"),
    ("P-0001", "ELIG-IN10", "1.0"),
    ("P-0002", "ELIG-IN09", "1.0"),
    ("P-0002", "ELIG-IN10", "1.0"),
    ("P-0002", "VISIT-01", "1.0"),
    ("P-0003", "ELIG-IN12", "1.1"),
    ("P-0004", "ELIG-IN12", "1.1"),
]
"""(participant, rule, version decided under) of every finding of ``stream()``, in order."""
