"""What the simulator draws from: the rule catalogue it injects, how injections group, and the
clinical vocabulary of a journey (treatments, growth references, adverse event terms)."""

from __future__ import annotations

RULE_IDS: tuple[str, ...] = (
    "ELIG-IN01",
    "ELIG-IN02",
    "ELIG-IN03",
    "ELIG-IN04",
    "ELIG-IN05",
    "ELIG-IN06",
    "ELIG-IN08",
    "ELIG-IN09",
    "ELIG-IN10",
    "ELIG-IN11",
    *(f"ELIG-EX{n:02d}" for n in range(1, 11)),
    "ELIG-MISSING",
    "CONSENT-01",
    "CONSENT-02",
    "SEQ-01",
    "SEQ-02",
    "SEQ-03",
    "SEQ-04",
    "DOSE-01",
    "VISIT-01",
    "VISIT-02",
    "SAFETY-CRS3",
    "SAFETY-ICANS3",
    "SAFETY-SAE",
    "RELAPSE",
)
"""Every rule id of the NCT06904729 v1 catalogue: each can be injected."""

GROUP_OF: dict[str, str] = {
    **{r: "eligibility" for r in RULE_IDS if r.startswith("ELIG-")},
    "ELIG-IN08": "consent",
    "CONSENT-01": "consent",
    "CONSENT-02": "withdrawal",
    "SEQ-01": "confirmation",
    "SEQ-02": "treatment",
    "SEQ-03": "treatment",
    "SEQ-04": "treatment",
    "DOSE-01": "treatment",
    "VISIT-01": "follow-up",
    "VISIT-02": "follow-up",
    "SAFETY-CRS3": "safety",
    "SAFETY-ICANS3": "safety",
    "SAFETY-SAE": "safety",
    "RELAPSE": "relapse",
}
"""Injections of one group touch the same facts: a participant gets at most one per group, and a
consent withdrawal (which ends the journey) comes alone."""

STAGES = ("eligibility", "consent", "confirmation", "treatment", "withdrawal", "follow-up", "safety", "relapse")
"""The order injections are applied in: the journey's timeline first, then what hangs off it."""

SCREEN_FAILURE_RULES = frozenset({"CONSENT-01", "CONSENT-02", "SEQ-02", "SAFETY-SAE"})
"""Rules that can be raised for a participant who is never enrolled."""

HISTORY_EXCLUSIONS = {
    "ELIG-EX01": "kidney_transplant",
    "ELIG-EX02": "serious_drug_allergy",
    "ELIG-EX03": "uncontrolled_infection",
    "ELIG-EX04": "severe_organ_dysfunction",
    "ELIG-EX05": "congenital_ig_deficiency",
    "ELIG-EX07": "malignancy_within_5y",
    "ELIG-EX08": "severe_cns_or_psychiatric",
    "ELIG-EX09": "other_trial_within_3m",
    "ELIG-EX10": "prior_car_t",
}
"""The exclusions read from the medical history: the flag of ``MedicalHistoryRecorded`` each one sets."""


# -- the clinical vocabulary of a journey ---------------------------------------------------------

IMMUNOSUPPRESSANTS = (
    "mycophenolate mofetil",
    "tacrolimus",
    "cyclophosphamide",
    "cyclosporine",
    "azathioprine",
    "leflunomide",
    "rituximab",
    "belimumab",
)
GROWTH = (
    # age (years), height F, height M (cm), weight F, weight M (kg): Chinese growth references, roughly
    (5, 110.0, 111.0, 18.5, 19.5),
    (6, 116.0, 118.0, 21.0, 22.0),
    (8, 128.0, 130.0, 26.0, 28.0),
    (10, 140.0, 140.0, 33.0, 35.0),
    (12, 151.0, 151.0, 41.0, 43.0),
    (14, 157.0, 163.0, 48.0, 53.0),
    (16, 159.0, 170.0, 52.0, 59.0),
    (18, 160.0, 172.0, 53.0, 63.0),
    (21, 160.0, 172.0, 54.0, 65.0),
)
REGIMEN = "fludarabine 25 mg/m2 + cyclophosphamide 250 mg/m2, days -5 to -3"
WITHDRAWAL_REASONS = (
    "family relocated out of the region",
    "lost to follow-up",
    "investigator decision: participant safety",
    "participant no longer wishes to attend visits",
)
MILD_AES = (
    ("Neutrophil count decreased", 1, 2),
    ("Fever", 1, 1),
    ("Upper respiratory infection", 1, 2),
    ("Hypogammaglobulinaemia", 2, 2),
    ("Nausea", 1, 1),
    ("Headache", 1, 1),
)
SERIOUS_AES = ("Pneumonia", "Febrile neutropenia", "Herpes zoster, disseminated", "Sepsis")
