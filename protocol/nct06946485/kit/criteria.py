"""NCT06946485's registry record, criterion by criterion: the rules that encode it, or why none does.

The words are the record's as found (docs/protocol-NCT06946485.md), typos included. The record is
incomplete: every exclusion criterion, the rest of inclusion 7 and anything after it are not
available, and none is encoded from another trial.
"""

from __future__ import annotations

from protocol.criteria import Criterion, NotEncoded

NO_TEXT = NotEncoded.TEXT_NOT_AVAILABLE
NO_DATA = NotEncoded.NO_DATA
JUDGEMENT = NotEncoded.INVESTIGATOR_JUDGEMENT

CRITERIA = (
    Criterion(
        "Inclusion 1",
        "Meet the 2019 EULAR/ACR classification criteria for systemic lupus erythematosus (SLE).",
        ("ELIG-IN02", "ELIG-MISSING"),
    ),
    Criterion("Inclusion 2", "SLEDAI-2000 score >6.", ("ELIG-IN04", "ELIG-MISSING")),
    Criterion(
        "Inclusion 3",
        "Have at least one BILAG-2004 Grade A or two Grade B organ domain scores, or both.",
        ("ELIG-IN03", "ELIG-MISSING"),
    ),
    Criterion(
        "Inclusion 4",
        "Failure to respond to conventional therapy or disease relapse after remission. Conventional therapy: "
        "Glucocorticoids (≥1 mg/kg/day) combined with cyclophosphamide and ≥1 of the following immunosuppressants "
        "for >6 months: antimalarials, azathioprine, mycophenolate mofetil, methotrexate, leflunomide, tacrolimus, "
        "cyclosporine A, and/or biologics (e.g., rituximab, belimumab, telitacicept).",
        ("ELIG-IN05",),
        note="'failure to respond' is read as no remission recorded in the medical history; biologics other than "
        "the three named are not counted",
    ),
    Criterion("Inclusion 5", "Aged 18-65 years; both genders eligible.", ("ELIG-IN01",)),
    Criterion(
        "Inclusion 6",
        "Adequate organ function: bone marrow (WBC ≥3×10⁹/L, ANC ≥1×10⁹/L without colony-stimulating factor "
        "therapy within 2 weeks prior to testing, Hemoglobin ≥60 g/L); liver (ALT ≤3×ULN, AST ≤3×ULN, TBIL "
        "≤1.5×ULN, except Gilbert's syndrome, TBIL ≤3.0×ULN); renal (CrCl ≥60 mL/min, Cockcroft-Gault); "
        "coagulation (INR ≤1.5×ULN, PT ≤1.5×ULN); cardiac (Hemodynamic stability with LVEF ≥55%).",
        ("ELIG-IN06", "ELIG-MISSING"),
        note="'hemodynamic stability' beyond the LVEF is the investigator's judgement (SEQ-01)",
    ),
    Criterion(
        "Inclusion 7",
        "Agrees to use double barrier methods, condoms, oral or injectable contraceptives, or intrauterine devices "
        "during the study period and for one year after taking the study medication. Femal [source truncated here]",
        not_encoded=NO_DATA,
        note="no contract event records a contraception agreement, and the text is cut off: the investigator's "
        "confirmation covers it",
    ),
    Criterion(
        "Inclusion 8 and later",
        "NOT AVAILABLE (the source is cut off inside item 7; informed consent, for example, is not visible)",
        not_encoded=NO_TEXT,
        note="consent before any procedure is checked as GCP (CONSENT-01, CONSENT-02), not as a criterion",
    ),
    Criterion(
        "Exclusion criteria",
        "NOT AVAILABLE: no stored copy of the record reaches the exclusion list",
        not_encoded=NO_TEXT,
        note="infection screening, prior CAR-T, transplant or GVHD history, CNS lupus, pregnancy, malignancy, "
        "vaccines, other trials: unknown for this trial; not taken from NCT06904729 or a sibling trial",
    ),
    Criterion(
        "Dose",
        "NOT AVAILABLE: the registry's intervention description is only '… cell therpy'",
        not_encoded=NO_TEXT,
        note="no DOSE rule; the arm has no target (per kg or fixed) until the dose is known",
    ),
    Criterion(
        "Lymphodepletion",
        "NOT AVAILABLE: no source mentions it",
        not_encoded=NO_TEXT,
        note="a lymphodepletion, if given, must follow enrollment (SEQ-02); the infusion does not require one",
    ),
    Criterion(
        "Visit schedule",
        "NOT AVAILABLE: no source states visits or windows (outcomes at 1 month and within 12 months only)",
        not_encoded=NO_TEXT,
        note="no VISIT rule; the safety alerts quote the day after infusion",
    ),
)
