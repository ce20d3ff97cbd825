"""NCT06904729: CAR-T cells for refractory/recurrent lupus nephritis in children, version 1.0.

One module per protocol section; each contributes the facts it derives and its rules, in
catalogue order. Registry record: docs/protocol-NCT06904729.md.

A protocol package: ``HISTORY`` is what its ``trialguard.protocols`` entry point gives the engine
(``pyproject.toml``); nothing outside protocol packages, tests and benchmarks imports this module.
"""

from protocol.model import Protocol
from protocol.nct06904729 import (
    exclusion,
    follow_up,
    inclusion,
    informed_consent,
    safety,
    screening,
    treatment,
)
from protocol.nct06904729.design import ARM_TARGETS, ARMS, SCHEDULE, STEPS, VISIT_SCHEDULE
from protocol.nct06904729.parameters import PARAMETERS
from protocol.versions import ProtocolHistory, Version

PROTOCOL = Protocol(
    study_id="NCT06904729",
    version="1.0",
    title="CAR-T cells for refractory/recurrent lupus nephritis in children",
    arms=ARMS,
    parameters=(*PARAMETERS, ARM_TARGETS, VISIT_SCHEDULE),
    schedule=SCHEDULE,
    steps=STEPS,
    fact_sources=(
        screening.screening_facts,
        inclusion.inclusion_facts,
        exclusion.exclusion_facts,
        informed_consent.consent_facts,
        treatment.treatment_facts,
        follow_up.follow_up_facts,
        safety.safety_facts,
    ),
    rules=(
        *inclusion.RULES,
        *exclusion.RULES,
        *screening.RULES,
        *informed_consent.RULES,
        *treatment.RULES,
        *follow_up.RULES,
        *safety.RULES,
    ),
)

HISTORY = ProtocolHistory([Version(PROTOCOL)])
"""The study's versions in order: the registry record shows no amendment, so v1.0 is the only one,
in force from the beginning."""
