"""The numbers of NCT06946485 v1.0, each with its source; ASSUMPTION where the record gives none.

Source: the registry record as found (docs/protocol-NCT06946485.md), which is incomplete: no
exclusion criteria, no dose, no lymphodepletion, no visit schedule. Nothing here is taken from
another trial. Rules and fact derivations read a version's values from its ``Terms``.
"""

from __future__ import annotations

from protocol.model import Parameter

AGE_MIN = Parameter("age_min", 18, "years", "Inclusion 5: Aged 18-65 years (Minimum Eligible Age 18 Years)")
AGE_MAX = Parameter(
    "age_max",
    65,
    "years",
    "Inclusion 5: Aged 18-65 years (Maximum Eligible Age 65 Years)",
    assumption="age at consent; 65 is included, so a participant is eligible until the day before the 66th birthday",
)
EULAR_ACR_MIN_SCORE = Parameter(
    "eular_acr_min_score", 10, "points", "Inclusion 1; the 2019 EULAR/ACR criteria classify SLE at >= 10 with ANA"
)
SLEDAI_MIN = Parameter(
    "sledai_min", 7, "points", "Inclusion 2: SLEDAI-2000 score >6 (an integer score: >= 7); SLEDAI-2000 is SLEDAI-2K"
)
BILAG_A_MIN = Parameter("bilag_a_min", 1, "domains", "Inclusion 3: at least one BILAG-2004 Grade A")
BILAG_B_MIN = Parameter("bilag_b_min", 2, "domains", "Inclusion 3: or two Grade B organ domain scores, or both")
GLUCOCORTICOID_MIN = Parameter(
    "glucocorticoid_min_mg_per_kg_day",
    1.0,
    "mg/kg/d",
    "Inclusion 4: Glucocorticoids (>=1 mg/kg/day)",
    assumption="a dose in mg/d is divided by the registration weight; no glucocorticoid agent conversion (the "
    "record names no equivalence): the dose as recorded",
)
REFRACTORY_MIN_DAYS = Parameter(
    "refractory_min_days",
    183,
    "days",
    "Inclusion 4: immunosuppressants for >6 months",
    assumption="6 months = 183 days; the duration applies to the listed immunosuppressant, glucocorticoids and "
    "cyclophosphamide need only have been given",
)
WBC_MIN = Parameter("wbc_min", 3.0, "10*9/L", "Inclusion 6: White blood cell count >=3x10^9/L")
NEUTROPHILS_MIN = Parameter("neutrophils_min", 1.0, "10*9/L", "Inclusion 6: Absolute neutrophil count >=1x10^9/L")
CSF_FREE_DAYS = Parameter(
    "csf_free_days",
    14,
    "days",
    "Inclusion 6: without colony-stimulating factor therapy within 2 weeks prior to testing",
)
HEMOGLOBIN_MIN = Parameter("hemoglobin_min", 60.0, "g/L", "Inclusion 6: Hemoglobin >=60 g/L")
TRANSAMINASE_MAX_ULN = Parameter("transaminase_max_uln", 3.0, "x ULN", "Inclusion 6: ALT <=3xULN, AST <=3xULN")
BILIRUBIN_MAX_ULN = Parameter("bilirubin_max_uln", 1.5, "x ULN", "Inclusion 6: TBIL <=1.5xULN")
BILIRUBIN_MAX_ULN_GILBERT = Parameter(
    "bilirubin_max_uln_gilbert", 3.0, "x ULN", "Inclusion 6: except Gilbert's syndrome, TBIL <=3.0xULN"
)
CRCL_MIN = Parameter(
    "crcl_min",
    60.0,
    "mL/min",
    "Inclusion 6: Creatinine clearance (CrCl) >=60 mL/min (calculated by Cockcroft-Gault formula)",
    assumption="age in completed years on the creatinine sample date; weight from the registration (the contract "
    "has no weight measured with the sample)",
)
COAGULATION_MAX_ULN = Parameter("coagulation_max_uln", 1.5, "x ULN", "Inclusion 6: INR <=1.5xULN, PT <=1.5xULN")
INR_DEFAULT_ULN = Parameter(
    "inr_default_uln",
    1.0,
    "{INR}",
    "TrialGuard",
    assumption="INR has no laboratory ULN in the usual sense: without one on the result, ULN = 1.0 (INR <= 1.5)",
)
LVEF_MIN = Parameter("lvef_min", 55.0, "%", "Inclusion 6: left ventricular ejection fraction (LVEF) >=55%")
SCREENING_WINDOW_DAYS = Parameter(
    "screening_window_days",
    28,
    "days",
    "TrialGuard",
    assumption="not stated in the record: screening labs, LVEF and SLEDAI-2K count if taken within 28 days before "
    "enrollment; BILAG-2004 too",
)
SEVERE_GRADE = Parameter(
    "severe_grade",
    3,
    "grade",
    "Primary outcome 2: CRS by ASTCT consensus, ICANS by the adult ASTCT ICANS consensus grading",
    assumption="the record names the grading, not an alert level: grade 3 or higher alerts the trial team",
)
FACT_DECIMALS = Parameter(
    "fact_decimals",
    6,
    "decimals",
    "TrialGuard",
    assumption="derived values (CrCl, ULN multiples) are rounded to 6 decimals before comparison",
)

PARAMETERS = (
    AGE_MIN,
    AGE_MAX,
    EULAR_ACR_MIN_SCORE,
    SLEDAI_MIN,
    BILAG_A_MIN,
    BILAG_B_MIN,
    GLUCOCORTICOID_MIN,
    REFRACTORY_MIN_DAYS,
    WBC_MIN,
    NEUTROPHILS_MIN,
    CSF_FREE_DAYS,
    HEMOGLOBIN_MIN,
    TRANSAMINASE_MAX_ULN,
    BILIRUBIN_MAX_ULN,
    BILIRUBIN_MAX_ULN_GILBERT,
    CRCL_MIN,
    COAGULATION_MAX_ULN,
    INR_DEFAULT_ULN,
    LVEF_MIN,
    SCREENING_WINDOW_DAYS,
    SEVERE_GRADE,
    FACT_DECIMALS,
)
