"""The NCT06904729 catalogue, rule by rule: given these events, these findings.

One case per clause and per boundary, in and just out. Every case starts from a clean journey
(tests/journey.py) that raises nothing and changes one clinical fact.
"""

from __future__ import annotations

from typing import Any

import pytest

from contracts import ParticipantEvent
from protocol.nct06904729 import PROTOCOL
from tests.builders import event
from tests.journey import INFUSED, at, journey, replay, rule_ids

MINOR_SIGNERS = ("participant", "guardian")


def after_infusion(event_type: str, payload: dict[str, Any] | None, day: int) -> ParticipantEvent:
    """An event on a day after infusion."""
    return event(event_type, payload, participant="P-0001", at=at(INFUSED + day, "15:00:00"))


def ae(**payload: Any) -> ParticipantEvent:
    return after_infusion("AdverseEventReported", {"term": "CRS", "ctcae_grade": 3, "serious": False, **payload}, 2)


CASES: list[tuple[str, list[ParticipantEvent], list[str]]] = [
    ("clean journey raises nothing", journey(), []),
    # Inclusion 1: 6th birthday <= consent date < 19th birthday (consent on 2025-11-03)
    ("IN01 6th birthday on the consent day", journey(birth_date="2019-11-03"), []),
    ("IN01 one day before the 6th birthday", journey(birth_date="2019-11-04"), ["ELIG-IN01"]),
    ("IN01 day before the 19th birthday", journey(birth_date="2006-11-04"), []),
    ("IN01 on the 19th birthday", journey(birth_date="2006-11-03"), ["ELIG-IN01"]),
    # Inclusion 2: ANA entry criterion and EULAR/ACR score >= 10
    ("IN02 score 10", journey(eular=(True, 10)), []),
    ("IN02 score 9", journey(eular=(True, 9)), ["ELIG-IN02"]),
    ("IN02 ANA entry not met", journey(eular=(False, 19)), ["ELIG-IN02"]),
    # Inclusion 3: active class III/IV (+-V); consent - 183 days <= biopsy <= enrollment
    ("IN03 class III", journey(biopsy=("III", True)), []),
    ("IN03 class IV+V", journey(biopsy=("IV+V", True)), []),
    ("IN03 class II", journey(biopsy=("II", True)), ["ELIG-IN03"]),
    ("IN03 class V alone", journey(biopsy=("V", True)), ["ELIG-IN03"]),
    ("IN03 no active lesions", journey(biopsy=("IV", False)), ["ELIG-IN03"]),
    ("IN03 biopsy 183 days before consent", journey(biopsy_day=-183), []),
    ("IN03 biopsy 184 days before consent", journey(biopsy_day=-184), ["ELIG-IN03"]),
    ("IN03 biopsy on the enrollment day", journey(biopsy_day=10), []),
    ("IN03 biopsy after enrollment", journey(biopsy_day=11), ["ELIG-IN03"]),
    # Inclusion 4: SLEDAI-2K >= 8
    ("IN04 SLEDAI-2K 8", journey(sledai=8), []),
    ("IN04 SLEDAI-2K 7", journey(sledai=7), ["ELIG-IN04"]),
    # Inclusion 5: >= 2 immunosuppressants > 6 months without remission, or relapse; proteinuria not in remission
    (
        "IN05 one immunosuppressant",
        journey(history={"immunosuppressants": [{"agent": "tacrolimus", "start": "2024-06-01", "end": "2025-12-01"}]}),
        ["ELIG-IN05"],
    ),
    (
        "IN05 second agent exactly 183 days",
        journey(
            history={
                "immunosuppressants": [
                    {"agent": "tacrolimus", "start": "2024-06-01", "end": "2025-12-01"},
                    {"agent": "cyclophosphamide", "start": "2025-01-01", "end": "2025-07-03"},
                ]
            }
        ),
        ["ELIG-IN05"],
    ),
    (
        "IN05 second agent 184 days",
        journey(
            history={
                "immunosuppressants": [
                    {"agent": "tacrolimus", "start": "2024-06-01", "end": "2025-12-01"},
                    {"agent": "cyclophosphamide", "start": "2025-01-01", "end": "2025-07-04"},
                ]
            }
        ),
        [],
    ),
    (
        "IN05 ongoing agent counts up to enrollment",
        journey(
            history={
                "immunosuppressants": [
                    {"agent": "tacrolimus", "start": "2024-06-01", "end": None},
                    {"agent": "leflunomide", "start": "2025-01-01"},
                ]
            }
        ),
        [],
    ),
    (
        "IN05 the same agent twice counts once",
        journey(
            history={
                "immunosuppressants": [
                    {"agent": "tacrolimus", "start": "2023-01-01", "end": "2023-12-01"},
                    {"agent": "Tacrolimus", "start": "2024-06-01", "end": "2025-12-01"},
                ]
            }
        ),
        ["ELIG-IN05"],
    ),
    ("IN05 remission achieved", journey(history={"remission_achieved": True}), ["ELIG-IN05"]),
    (
        "IN05 relapse after remission",
        journey(history={"remission_achieved": True, "relapse_after_remission": True}),
        [],
    ),
    ("IN05 proteinuria in remission", journey(history={"proteinuria_in_remission": True}), ["ELIG-IN05"]),
    # Inclusion 6: CD19-positive B cells by flow
    ("IN06 CD19 0 %", journey(labs={"cd19": (0, "%", None)}), ["ELIG-IN06"]),
    ("IN06 CD19 0.1 %", journey(labs={"cd19": (0.1, "%", None)}), []),
    ("IN06 CD19 negative", journey(labs={"cd19": ("negative", None, None)}), ["ELIG-IN06"]),
    ("IN06 CD19 positive", journey(labs={"cd19": ("positive", None, None)}), []),
    ("IN06 CD19 count 0 /uL", journey(labs={"cd19": ("8116-6", (0, "/uL", None))}), ["ELIG-IN06"]),
    ("IN06 CD19 count 5 /uL", journey(labs={"cd19": ("8116-6", (5, "/uL", None))}), []),
    # Inclusion 8: participant and, under 18 at consent, a guardian
    ("IN08 minor without guardian", journey(signers=("participant",)), ["CONSENT-01", "ELIG-IN08"]),
    ("IN08 adult without guardian", journey(birth_date="2007-11-03", signers=("participant",)), []),
    ("IN08 no consent at all", journey(signers=()), ["CONSENT-01", "ELIG-IN08"]),
    # Inclusion 9: organ function
    ("IN09 lymphocytes 1.0", journey(labs={"lymphocytes": (1.0, "10*9/L", None)}), []),
    ("IN09 lymphocytes 0.99", journey(labs={"lymphocytes": (0.99, "10*9/L", None)}), ["ELIG-IN09"]),
    ("IN09 lymphocytes 1000 /uL", journey(labs={"lymphocytes": (1000, "/uL", None)}), []),
    ("IN09 lymphocytes 990 /uL", journey(labs={"lymphocytes": (990, "/uL", None)}), ["ELIG-IN09"]),
    ("IN09 WBC 3.0 10*3/uL", journey(labs={"wbc": (3.0, "10*3/uL", None)}), []),
    ("IN09 WBC 2.9", journey(labs={"wbc": (2.9, "10*9/L", None)}), ["ELIG-IN09"]),
    ("IN09 neutrophils 1.0", journey(labs={"neutrophils": (1.0, "10*9/L", None)}), []),
    ("IN09 neutrophils 0.9", journey(labs={"neutrophils": (0.9, "10*9/L", None)}), ["ELIG-IN09"]),
    ("IN09 G-CSF ended 14 days before the sample", journey(gcsf=(-30, -11)), ["ELIG-IN09"]),
    ("IN09 G-CSF ended 15 days before the sample", journey(gcsf=(-30, -12)), []),
    ("IN09 G-CSF ongoing", journey(gcsf=(-30, None)), ["ELIG-IN09"]),
    ("IN09 G-CSF started after the sample", journey(gcsf=(4, 6)), []),
    ("IN09 hemoglobin 60 g/L", journey(labs={"hemoglobin": (60, "g/L", None)}), []),
    ("IN09 hemoglobin 59 g/L", journey(labs={"hemoglobin": (59, "g/L", None)}), ["ELIG-IN09"]),
    ("IN09 hemoglobin 6.0 g/dL", journey(labs={"hemoglobin": (6.0, "g/dL", None)}), []),
    ("IN09 hemoglobin 5.9 g/dL", journey(labs={"hemoglobin": (5.9, "g/dL", None)}), ["ELIG-IN09"]),
    ("IN09 ALT exactly 3x ULN", journey(labs={"alt": (120, "U/L", 40)}), []),
    ("IN09 ALT above 3x ULN", journey(labs={"alt": (121, "U/L", 40)}), ["ELIG-IN09"]),
    ("IN09 AST exactly 3x ULN", journey(labs={"ast": (105, "U/L", 35)}), []),
    ("IN09 AST above 3x ULN", journey(labs={"ast": (106, "U/L", 35)}), ["ELIG-IN09"]),
    ("IN09 bilirubin exactly 1.5x ULN", journey(labs={"total_bilirubin": (1.8, "mg/dL", 1.2)}), []),
    ("IN09 bilirubin above 1.5x ULN", journey(labs={"total_bilirubin": (1.81, "mg/dL", 1.2)}), ["ELIG-IN09"]),
    ("IN09 bilirubin in umol/L", journey(labs={"total_bilirubin": (30.78, "umol/L", 20.52)}), []),
    (
        "IN09 Gilbert: bilirubin exactly 3x ULN",
        journey(labs={"total_bilirubin": (3.6, "mg/dL", 1.2)}, history={"gilbert_syndrome": True}),
        [],
    ),
    (
        "IN09 Gilbert: bilirubin above 3x ULN",
        journey(labs={"total_bilirubin": (3.61, "mg/dL", 1.2)}, history={"gilbert_syndrome": True}),
        ["ELIG-IN09"],
    ),
    ("IN09 eGFR exactly 30.0", journey(height_cm=150.0, labs={"creatinine": (2.065, "mg/dL", None)}), []),
    ("IN09 eGFR 29.9", journey(height_cm=150.0, labs={"creatinine": (2.07, "mg/dL", None)}), ["ELIG-IN09"]),
    ("IN09 eGFR 30.4 (140 cm, 1.9 mg/dL)", journey(height_cm=140.0, labs={"creatinine": (1.9, "mg/dL", None)}), []),
    ("IN09 eGFR from umol/L", journey(height_cm=150.0, labs={"creatinine": ("14682-9", (182.5, "umol/L", None))}), []),
    (
        "IN09 eGFR below 30 from umol/L",
        journey(height_cm=150.0, labs={"creatinine": ("14682-9", (183, "umol/L", None))}),
        ["ELIG-IN09"],
    ),
    ("IN09 INR 1.5 without ULN", journey(labs={"inr": (1.5, "{INR}", None)}), []),
    ("IN09 INR 1.51 without ULN", journey(labs={"inr": (1.51, "{INR}", None)}), ["ELIG-IN09"]),
    ("IN09 INR exactly 1.5x its ULN", journey(labs={"inr": (1.8, "{INR}", 1.2)}), []),
    ("IN09 PT exactly 1.5x ULN", journey(labs={"pt": (20.25, "s", 13.5)}), []),
    ("IN09 PT above 1.5x ULN", journey(labs={"pt": (20.3, "s", 13.5)}), ["ELIG-IN09"]),
    # Inclusion 10 and 11
    ("IN10 ANA 1:80", journey(labs={"ana": ("1:80", "{titer}", None)}), []),
    ("IN10 ANA 1:40", journey(labs={"ana": ("1:40", "{titer}", None)}), ["ELIG-IN10"]),
    ("IN10 ANA negative", journey(labs={"ana": ("negative", None, None)}), ["ELIG-IN10"]),
    ("IN11 ECOG 2", journey(ecog=2), []),
    ("IN11 ECOG 3", journey(ecog=3), ["ELIG-IN11"]),
    # Exclusions from the medical history, one rule id per exclusion number
    *[
        (f"EX{n:02d} {flag}", journey(history={flag: True}), [f"ELIG-EX{n:02d}"])
        for n, flag in [
            (1, "kidney_transplant"),
            (2, "serious_drug_allergy"),
            (3, "uncontrolled_infection"),
            (4, "severe_organ_dysfunction"),
            (5, "congenital_ig_deficiency"),
            (7, "malignancy_within_5y"),
            (8, "severe_cns_or_psychiatric"),
            (9, "other_trial_within_3m"),
            (10, "prior_car_t"),
        ]
    ],
    # Exclusion 6: infections as the record defines them
    (
        "EX06 HBsAg+ with HBV DNA above normal",
        journey(labs={"hbsag": ("positive", None, None), "hbv_dna": ("42595-9", (250, "[IU]/mL", 20))}),
        ["ELIG-EX06"],
    ),
    (
        "EX06 HBsAg+ with HBV DNA within normal",
        journey(labs={"hbsag": ("positive", None, None), "hbv_dna": ("42595-9", (20, "[IU]/mL", 20))}),
        [],
    ),
    (
        "EX06 anti-HBc+ with HBV DNA detected",
        journey(labs={"anti_hbc": ("positive", None, None), "hbv_dna": ("42595-9", (50, "[IU]/mL", None))}),
        ["ELIG-EX06"],
    ),
    (
        "EX06 HBV DNA detected but HBsAg and anti-HBc negative",
        journey(labs={"hbv_dna": ("42595-9", (50, "[IU]/mL", None))}),
        [],
    ),
    (
        "EX06 anti-HCV+ with HCV RNA positive",
        journey(labs={"anti_hcv": ("positive", None, None), "hcv_rna": ("11259-9", ("positive", None, None))}),
        ["ELIG-EX06"],
    ),
    (
        "EX06 anti-HCV+ with HCV RNA negative",
        journey(labs={"anti_hcv": ("positive", None, None), "hcv_rna": ("11259-9", ("negative", None, None))}),
        [],
    ),
    ("EX06 HIV positive", journey(labs={"hiv": ("positive", None, None)}), ["ELIG-EX06"]),
    ("EX06 HIV equivocal counts as positive", journey(labs={"hiv": ("equivocal", None, None)}), ["ELIG-EX06"]),
    ("EX06 syphilis positive", journey(labs={"syphilis": ("positive", None, None)}), ["ELIG-EX06"]),
    # ELIG-MISSING: required assessments absent or older than 28 days before enrollment
    ("MISSING ALT absent", journey(labs={"alt": None}), ["ELIG-MISSING"]),
    ("MISSING ALT without its ULN", journey(labs={"alt": (30, "U/L", None)}), ["ELIG-MISSING"]),
    ("MISSING HBsAg+ without HBV DNA", journey(labs={"hbsag": ("positive", None, None)}), ["ELIG-MISSING"]),
    ("MISSING anti-HCV+ without HCV RNA", journey(labs={"anti_hcv": ("positive", None, None)}), ["ELIG-MISSING"]),
    ("MISSING labs exactly 28 days before enrollment", journey(consent_day=-30, lab_day=-18), []),
    ("MISSING labs 28 days and a minute before", journey(consent_day=-30, lab_day=-19), ["ELIG-MISSING"]),
    ("MISSING SLEDAI-2K and ECOG outdated", journey(consent_day=-30, sledai_day=-19), ["ELIG-MISSING"]),
    ("MISSING no SLEDAI-2K", journey(sledai=None), ["ELIG-MISSING"]),
    ("MISSING no ECOG", journey(ecog=None), ["ELIG-MISSING"]),
    ("MISSING no EULAR/ACR score", journey(eular=None), ["ELIG-MISSING"]),
    ("MISSING no medical history", journey(history={}), ["ELIG-MISSING"]),
    # SEQ-01: enrolled without the investigator's eligibility confirmation
    ("SEQ-01 no confirmation", journey(eligible=None), ["SEQ-01"]),
    ("SEQ-01 confirmed not eligible", journey(eligible=False), ["SEQ-01"]),
    # SEQ-02: out of order
    ("SEQ-02 leukapheresis before enrollment", journey(leukapheresis_day=9), ["SEQ-02"]),
    ("SEQ-02 leukapheresis on the enrollment day after it", journey(leukapheresis_day=10), []),
    ("SEQ-02 lymphodepletion without leukapheresis", journey(leukapheresis_day=None), ["SEQ-02"]),
    ("SEQ-02 infusion without lymphodepletion", journey(lymphodepletion_day=None), ["SEQ-02"]),
    (
        "SEQ-02 leukapheresis of a participant never enrolled",
        journey(enroll=False, extra=[event("LeukapheresisPerformed", participant="P-0001", at=at(12))]),
        ["SEQ-02"],
    ),
    (
        "SEQ-02 relapse before infusion (and the relapse alert)",
        journey(
            infusion_day=None,
            extra=[event("RelapseReported", {"description": "flare"}, participant="P-0001", at=at(40))],
        ),
        ["SEQ-02", "RELAPSE"],
    ),
    # SEQ-03: a second infusion
    (
        "SEQ-03 second infusion",
        journey(
            extra=[
                after_infusion("CarTInfused", {"total_cells": 1.375e7, "weight_kg": 27.5, "product_lot": "LOT-2"}, -1)
            ]
        ),
        ["SEQ-03"],
    ),
    # SEQ-04: infusion 2-14 days after lymphodepletion
    ("SEQ-04 2 days after lymphodepletion", journey(lymphodepletion_day=28), []),
    ("SEQ-04 1 day after lymphodepletion", journey(lymphodepletion_day=29), ["SEQ-04"]),
    ("SEQ-04 14 days after lymphodepletion", journey(lymphodepletion_day=16), []),
    ("SEQ-04 15 days after lymphodepletion", journey(lymphodepletion_day=15), ["SEQ-04"]),
    # DOSE-01: cells/kg within +-20 % of the arm's target (low 5e5/kg; 27.5 kg)
    ("DOSE-01 exactly -20 %", journey(total_cells=11_000_000.0), []),
    ("DOSE-01 below -20 %", journey(total_cells=10_999_000.0), ["DOSE-01"]),
    ("DOSE-01 exactly +20 %", journey(total_cells=16_500_000.0), []),
    ("DOSE-01 above +20 %", journey(total_cells=16_501_000.0), ["DOSE-01"]),
    ("DOSE-01 high-dose arm given the low dose", journey(arm="high_dose"), ["DOSE-01"]),
    ("DOSE-01 high-dose arm at target", journey(arm="high_dose", total_cells=27_500_000.0), []),
    # VISIT-01: visit in its window (D7 +-2, M3 +-7, M12 +-14 days after infusion)
    ("VISIT-01 D7 on day 9", journey(visits={"D7": 9}), []),
    ("VISIT-01 D7 on day 10", journey(visits={"D7": 10}), ["VISIT-01"]),
    ("VISIT-01 D7 on day 4", journey(visits={"D7": 4}), ["VISIT-01"]),
    ("VISIT-01 M3 on day 97", journey(visits={"M3": 97}), []),
    ("VISIT-01 M3 on day 98", journey(visits={"M3": 98}), ["VISIT-01"]),
    ("VISIT-01 M12 on day 351", journey(visits={"M12": 351}), []),
    ("VISIT-01 M12 on day 350", journey(visits={"M12": 350}), ["VISIT-01"]),
    # VISIT-02: a window closed with no visit, proven by a later event
    ("VISIT-02 D14 missed, seen at D28", journey(visits={"D14": None}), ["VISIT-02"]),
    ("VISIT-02 D7 and D14 missed", journey(visits={"D7": None, "D14": None}), ["VISIT-02", "VISIT-02"]),
    ("VISIT-02 M24 missed, nothing after", journey(visits={"M24": None}), []),
    (
        "VISIT-02 M24 missed, clock on its last day",
        journey(visits={"M24": None}, extra=[after_infusion("ClockTicked", None, 744)]),
        [],
    ),
    (
        "VISIT-02 M24 missed, clock the day after",
        journey(visits={"M24": None}, extra=[after_infusion("ClockTicked", None, 745)]),
        ["VISIT-02"],
    ),
    (
        "VISIT-02 not after withdrawal",
        journey(
            visits={"M24": None},
            extra=[
                after_infusion("ParticipantWithdrawn", {"reason": "moved"}, 600),
                after_infusion("ClockTicked", None, 800),
            ],
        ),
        [],
    ),
    (
        "VISIT-02 not after consent was withdrawn",
        journey(
            visits={"M24": None},
            extra=[
                after_infusion("ConsentWithdrawn", {"reason": "family decision"}, 600),
                after_infusion("ClockTicked", None, 800),
            ],
        ),
        [],
    ),
    # CONSENT-02: a procedure after consent was withdrawn, once per withdrawal
    (
        "CONSENT-02 visits after withdrawal",
        journey(
            visits={
                "D7": None,
                "D14": None,
                "D28": None,
                "M3": None,
                "M6": None,
                "M12": None,
                "M18": None,
                "M24": None,
            },
            extra=[
                after_infusion("ConsentWithdrawn", {"reason": "family decision"}, 3),
                after_infusion("FollowUpVisitCompleted", {"visit": "D7"}, 7),
                after_infusion("FollowUpVisitCompleted", {"visit": "D14"}, 14),
            ],
        ),
        ["CONSENT-02"],
    ),
    # Safety alerts, once per adverse event
    ("SAFETY CRS grade 3", journey(extra=[ae(crs_grade=3)]), ["SAFETY-CRS3"]),
    ("SAFETY CRS grade 2", journey(extra=[ae(crs_grade=2)]), []),
    ("SAFETY ICANS grade 3", journey(extra=[ae(icans_grade=3)]), ["SAFETY-ICANS3"]),
    ("SAFETY ICANS grade 2", journey(extra=[ae(icans_grade=2)]), []),
    ("SAFETY serious adverse event", journey(extra=[ae(serious=True)]), ["SAFETY-SAE"]),
    (
        "SAFETY all three",
        journey(extra=[ae(crs_grade=4, icans_grade=3, serious=True)]),
        ["SAFETY-CRS3", "SAFETY-ICANS3", "SAFETY-SAE"],
    ),
    (
        "RELAPSE after infusion",
        journey(extra=[after_infusion("RelapseReported", {"description": "flare", "upcr_mg_mg": 1.2}, 200)]),
        ["RELAPSE"],
    ),
]


@pytest.mark.parametrize(("events", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_rule(events: list[ParticipantEvent], expected: list[str]) -> None:
    assert rule_ids(events) == expected


def test_every_rule_of_the_catalogue_has_a_case_that_raises_it() -> None:
    raised = {rule for _, _, expected in CASES for rule in expected}
    assert raised == {r.rule_id for r in PROTOCOL.rules}


def test_two_missed_visits_from_one_trigger_have_distinct_ids() -> None:
    first, second = replay(journey(visits={"D7": None, "D14": None}))
    assert (first.evidence["visit"], second.evidence["visit"]) == ("D7", "D14")
    assert first.deviation_id != second.deviation_id  # type: ignore[union-attr]


def test_a_deviation_quotes_its_evidence() -> None:
    (finding,) = replay(journey(labs={"alt": (121, "U/L", 40)}))
    assert finding.rule_id == "ELIG-IN09"
    assert finding.protocol_reference == "Inclusion 9"
    assert finding.evidence["alt_uln_multiple"] == 3.025
    assert finding.evidence["egfr_schwartz"] == pytest.approx(99.87, abs=0.01)
