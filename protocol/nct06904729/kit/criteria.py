"""NCT06904729's registry record, criterion by criterion: the rules that encode it, or why none does.

The words are the record's (docs/protocol-NCT06904729.md). A criterion decided only at enrollment
from the data the contract carries is encoded; what only the investigator can judge is covered by
their EligibilityConfirmed (SEQ-01) and listed here as not encoded.
"""

from __future__ import annotations

from protocol.criteria import Criterion, NotEncoded

JUDGEMENT = NotEncoded.INVESTIGATOR_JUDGEMENT
NO_DATA = NotEncoded.NO_DATA

CRITERIA = (
    Criterion("Inclusion 1", "Age 6-18 years old (including critical value)", ("ELIG-IN01",)),
    Criterion(
        "Inclusion 2", "Diagnosed with SLE according to the 2019 EULAR/ACR SLE classification criteria", ("ELIG-IN02",)
    ),
    Criterion(
        "Inclusion 3",
        "According to the 2018 ISN/RPS LN standards diagnosed with active Class III or IV LN, with or without a "
        "membranous component and the biopsy must be performed within 6 months prior to screening",
        ("ELIG-IN03",),
    ),
    Criterion("Inclusion 4", "SLEDAI-2000 score ≥8 points", ("ELIG-IN04",)),
    Criterion(
        "Inclusion 5",
        "Meeting the diagnosis of refractory lupus nephritis: treatment with two or more immunosuppressants ... for "
        "more than 6 months without inducing remission or relapse after remission, accompanied by proteinuria "
        "without remission",
        ("ELIG-IN05",),
        note="which agents count as immunosuppressants is the site's entry in the medical history",
    ),
    Criterion(
        "Inclusion 6",
        "Positive expression of CD19 in peripheral blood B cells determined by flow cytometry",
        ("ELIG-IN06",),
    ),
    Criterion(
        "Inclusion 7",
        "Participants had good venous access, no contraindications for cell collection",
        not_encoded=JUDGEMENT,
    ),
    Criterion(
        "Inclusion 8",
        "Participants and their guardians sign the informed consent, understand the study procedures and "
        "participate in the clinical study voluntarily",
        ("ELIG-IN08", "CONSENT-01", "CONSENT-02"),
        note="understanding and voluntariness are the investigator's judgement (SEQ-01); the signatures are checked",
    ),
    Criterion(
        "Inclusion 9.1",
        "Hematopoietic function: lymphocyte count ≥1×10^9/L, white blood cell count ≥3×10^9/L, neutrophil count "
        "≥1×10^9/L (no colony-stimulating factor treatment within 2 weeks prior to examination), hemoglobin ≥60g/L",
        ("ELIG-IN09",),
    ),
    Criterion(
        "Inclusion 9.2",
        "Liver function: ALT≤3×ULN, AST≤3×ULN (except elevation caused by inflammatory myopathy), TBIL≤1.5×ULN "
        "(except Gilbert syndrome, total bilirubin ≤3.0×ULN)",
        ("ELIG-IN09",),
        note="the inflammatory-myopathy exception has no data in the contract: the investigator's judgement",
    ),
    Criterion(
        "Inclusion 9.3",
        "Renal function: eGFR ≥30 ml/(min.1.73m2) (Schwartz formula, except abnormal renal function by SLE)",
        ("ELIG-IN09",),
        note="the exception for renal function abnormal by SLE is the investigator's judgement",
    ),
    Criterion(
        "Inclusion 9.4",
        "Coagulation function: INR ≤1.5×ULN, prothrombin time (PT) ≤1.5×ULN",
        ("ELIG-IN09",),
    ),
    Criterion("Inclusion 9.5", "Heart function: hemodynamic stability", not_encoded=NO_DATA),
    Criterion("Inclusion 10", "Anti-nuclear antibody (ANA) ≥1:80", ("ELIG-IN10",)),
    Criterion("Inclusion 11", "Eastern Cancer Cooperation Group (ECOG) physical status score 0 to 2", ("ELIG-IN11",)),
    Criterion("Exclusion 1", "Received kidney transplant previously", ("ELIG-EX01",)),
    Criterion("Exclusion 2", "Serious drug allergy history or allergy", ("ELIG-EX02",)),
    Criterion(
        "Exclusion 3",
        "Presence or suspicion of fungal, bacterial, viral or other infections that cannot be controlled or "
        "require treatment",
        ("ELIG-EX03",),
    ),
    Criterion(
        "Exclusion 4",
        "Complicated with severe organ dysfunction of heart, liver, lung or coagulation dysfunction",
        ("ELIG-EX04",),
    ),
    Criterion("Exclusion 5", "Complicated with congenital immunoglobulin deficiency", ("ELIG-EX05",)),
    Criterion(
        "Exclusion 6",
        "Infectious diseases: HBsAg or HBc Ab positive with HBV DNA above the normal range; HCV antibody positive "
        "with HCV RNA above the normal range; HIV antibody positive; syphilis positive",
        ("ELIG-EX06", "ELIG-MISSING"),
    ),
    Criterion("Exclusion 7", "Diagnosed with malignant tumors in the last five years", ("ELIG-EX07",)),
    Criterion(
        "Exclusion 8",
        "Suffer from severe central nervous system disease, mental illness and severe cognitive dysfunction",
        ("ELIG-EX08",),
    ),
    Criterion("Exclusion 9", "Participated in other clinical trials within 3 months before enrollment", ("ELIG-EX09",)),
    Criterion("Exclusion 10", "Received CAR-T therapy previously", ("ELIG-EX10",)),
    Criterion(
        "Exclusion 11",
        "Other situations that the researcher considers unsuitable for inclusion",
        not_encoded=JUDGEMENT,
        note="the investigator's EligibilityConfirmed carries it; enrolling without it raises SEQ-01",
    ),
)
