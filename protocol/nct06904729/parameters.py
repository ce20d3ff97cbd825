"""The numbers of NCT06904729 v1.0, each with its source; ASSUMPTION where the record gives none.

Sources: the registry record (docs/protocol-NCT06904729.md) and the decisions in
docs/clinical-reference.md.

These are the declarations (name, unit, source, ASSUMPTION) with v1.0's values. Rules and fact
derivations never read ``.value`` here: they read the value of the version they decide for from
its ``Terms`` (``terms[SLEDAI_MIN]``), so an amendment's values take effect (see ``build``).
"""

from __future__ import annotations

from protocol.clinical import EQUIVOCAL_COUNTS_AS_POSITIVE
from protocol.model import Parameter

AGE_MIN = Parameter("age_min", 6, "years", "Inclusion 1: 6-18 years, both ends included")
AGE_MAX = Parameter("age_max", 18, "years", "Inclusion 1: 18 means before the 19th birthday")
AGE_OF_CONSENT = Parameter("age_of_consent", 18, "years", "Inclusion 8: under 18 a guardian signs too")
EULAR_ACR_MIN_SCORE = Parameter(
    "eular_acr_min_score", 10, "points", "Inclusion 2; EULAR/ACR 2019 classifies SLE at >= 10"
)
BIOPSY_MAX_DAYS_BEFORE_CONSENT = Parameter(
    "biopsy_max_days_before_consent",
    183,
    "days",
    "Inclusion 3: within 6 months prior to screening (screening starts at consent)",
)
SLEDAI_MIN = Parameter("sledai_min", 8, "points", "Inclusion 4")
IMMUNOSUPPRESSANTS_MIN = Parameter("immunosuppressants_min", 2, "agents", "Inclusion 5.1")
REFRACTORY_MIN_DAYS = Parameter(
    "refractory_min_days", 183, "days", "Inclusion 5.1: more than 6 months (6 months = 183 days)"
)
LYMPHOCYTES_MIN = Parameter("lymphocytes_min", 1.0, "10*9/L", "Inclusion 9.1")
WBC_MIN = Parameter("wbc_min", 3.0, "10*9/L", "Inclusion 9.1")
NEUTROPHILS_MIN = Parameter("neutrophils_min", 1.0, "10*9/L", "Inclusion 9.1")
GCSF_FREE_DAYS = Parameter(
    "gcsf_free_days", 14, "days", "Inclusion 9.1: no G-CSF within 2 weeks before the neutrophil sample"
)
HEMOGLOBIN_MIN = Parameter("hemoglobin_min", 60.0, "g/L", "Inclusion 9.1")
TRANSAMINASE_MAX_ULN = Parameter("transaminase_max_uln", 3.0, "x ULN", "Inclusion 9.2: ALT and AST")
BILIRUBIN_MAX_ULN = Parameter("bilirubin_max_uln", 1.5, "x ULN", "Inclusion 9.2")
BILIRUBIN_MAX_ULN_GILBERT = Parameter("bilirubin_max_uln_gilbert", 3.0, "x ULN", "Inclusion 9.2: with Gilbert syndrome")
EGFR_MIN = Parameter("egfr_min", 30.0, "mL/min/1.73m2", "Inclusion 9.3: bedside Schwartz")
COAGULATION_MAX_ULN = Parameter("coagulation_max_uln", 1.5, "x ULN", "Inclusion 9.4: INR and PT")
INR_DEFAULT_ULN = Parameter(
    "inr_default_uln",
    1.0,
    "{INR}",
    "clinical.md decisions",
    assumption="INR has no laboratory ULN in the usual sense: without one on the result, ULN = 1.0 (INR <= 1.5)",
)
ANA_MIN_TITRE = Parameter("ana_min_titre", 80, "dilution", "Inclusion 10: ANA >= 1:80")
ECOG_MAX = Parameter("ecog_max", 2, "points", "Inclusion 11")
SCREENING_WINDOW_DAYS = Parameter(
    "screening_window_days",
    28,
    "days",
    "clinical.md decisions",
    assumption="not stated in the record; common in CAR-T protocols: screening labs, SLEDAI-2K and ECOG count "
    "if taken within 28 days before enrollment",
)
DOSE_TOLERANCE = Parameter(
    "dose_tolerance",
    0.2,
    "fraction of target",
    "Interventions: 'approximately'",
    assumption="'approximately' is not quantified: +-20 % of the arm's target cells/kg, both ends included",
)
INFUSION_DAYS_AFTER_LYMPHODEPLETION = Parameter(
    "infusion_days_after_lymphodepletion",
    (2, 14),
    "days",
    "clinical.md decisions",
    assumption="common CAR-T practice: infusion 2-14 days after lymphodepletion, by calendar date, both ends included",
)
EQUIVOCAL_IS_POSITIVE = Parameter(
    "equivocal_is_positive",
    EQUIVOCAL_COUNTS_AS_POSITIVE,  # the value clinical.is_positive decides with
    "",
    "clinical.md (none)",
    assumption="an equivocal infection or CD19 screen is not a negative one: it counts as positive",
)
FACT_DECIMALS = Parameter(
    "fact_decimals",
    6,
    "decimals",
    "TrialGuard",
    assumption="derived values (eGFR, ULN multiples, dose ratio) are rounded to 6 decimals before comparison, so "
    "floating-point noise never moves a value across a limit it sits on (exactly 3x ULN is 3.0)",
)

PARAMETERS = (
    AGE_MIN,
    AGE_MAX,
    AGE_OF_CONSENT,
    EULAR_ACR_MIN_SCORE,
    BIOPSY_MAX_DAYS_BEFORE_CONSENT,
    SLEDAI_MIN,
    IMMUNOSUPPRESSANTS_MIN,
    REFRACTORY_MIN_DAYS,
    LYMPHOCYTES_MIN,
    WBC_MIN,
    NEUTROPHILS_MIN,
    GCSF_FREE_DAYS,
    HEMOGLOBIN_MIN,
    TRANSAMINASE_MAX_ULN,
    BILIRUBIN_MAX_ULN,
    BILIRUBIN_MAX_ULN_GILBERT,
    EGFR_MIN,
    COAGULATION_MAX_ULN,
    INR_DEFAULT_ULN,
    ANA_MIN_TITRE,
    ECOG_MAX,
    SCREENING_WINDOW_DAYS,
    DOSE_TOLERANCE,
    INFUSION_DAYS_AFTER_LYMPHODEPLETION,
    EQUIVOCAL_IS_POSITIVE,
    FACT_DECIMALS,
)
