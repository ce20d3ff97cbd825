"""NCT06904729's safety section, reporting side: the clock of each alert rule (``safety.py``
raises them). Declared here, in the kit, because a clock does not decide anything: it is not part
of a version's ruleset fingerprint, and findings do not change with it.

The registry record (docs/protocol-NCT06904729.md) states no reporting timelines, so every clock
is an ASSUMPTION, said so beside it.
"""

from __future__ import annotations

from protocol.reporting import ReportingClock, hours

IMMEDIATE = (
    "ICH E6(R2) 4.11.1 and 21 CFR 312.64(b): the investigator reports every serious adverse event to "
    "the sponsor immediately"
)

CLOCKS = (
    ReportingClock(
        "SAFETY-CRS3",
        hours(24),
        severity="serious: expedited",
        report_to="the sponsor",
        source=IMMEDIATE,
        assumption="The record sets no timeline; CRS of grade 3 or higher after CAR-T is reported as a serious "
        "adverse event, and 'immediately' is read as within 24 hours of awareness, as CAR-T protocols write it.",
    ),
    ReportingClock(
        "SAFETY-ICANS3",
        hours(24),
        severity="serious: expedited",
        report_to="the sponsor",
        source=IMMEDIATE,
        assumption="The record sets no timeline; ICANS of grade 3 or higher is reported as a serious adverse "
        "event, within 24 hours of awareness.",
    ),
    ReportingClock(
        "SAFETY-SAE",
        hours(24),
        severity="serious: expedited",
        report_to="the sponsor",
        source=IMMEDIATE,
        assumption="The record sets no timeline; 'immediately' is read as within 24 hours of awareness.",
    ),
    ReportingClock(
        "RELAPSE",
        hours(7 * 24),
        severity="outcome: routine",
        report_to="the study team (efficacy outcome)",
        source="Registry record: relapse is an outcome measure, not an expedited report",
        assumption="No regulation or record sets a clock for a relapse; 7 days keeps it from waiting unseen.",
    ),
)
"""One clock per alert rule of ``protocol.nct06904729.safety``, in its order."""
