"""NCT06946485's safety section, reporting side: the clock of each alert rule (``safety.py``
raises them). Declared in the kit because a clock decides nothing: it is not part of a version's
ruleset fingerprint.

The registry record (docs/protocol-NCT06946485.md, primary outcome 2) names what is collected (AE,
SAE, CRS, ICANS, GVHD) but no reporting timelines, so every clock is an ASSUMPTION, said so
beside it; nothing is taken from the other trial.
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
        assumption="The record sets no timeline; CRS at or above the alert grade is reported as a serious "
        "adverse event, within 24 hours of awareness.",
    ),
    ReportingClock(
        "SAFETY-ICANS3",
        hours(24),
        severity="serious: expedited",
        report_to="the sponsor",
        source=IMMEDIATE,
        assumption="The record sets no timeline; ICANS at or above the alert grade is reported as a serious "
        "adverse event, within 24 hours of awareness.",
    ),
    ReportingClock(
        "SAFETY-GVHD",
        hours(24),
        severity="special interest: expedited",
        report_to="the sponsor",
        source="Registry record, primary outcome 2: GVHD of an allogeneic (universal) product is collected",
        assumption="The record sets no timeline; GVHD after a universal CAR-T is an event of special interest "
        "and is reported like a serious adverse event, within 24 hours of awareness.",
    ),
    ReportingClock(
        "SAFETY-SAE",
        hours(24),
        severity="serious: expedited",
        report_to="the sponsor",
        source=IMMEDIATE,
        assumption="The record sets no timeline; 'immediately' is read as within 24 hours of awareness.",
    ),
)
"""One clock per alert rule of ``protocol.nct06946485.safety``, in its order."""
