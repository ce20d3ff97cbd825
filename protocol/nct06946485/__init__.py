"""NCT06946485: universal anti-CD70 CAR-T (CHT101) for relapsed/refractory SLE in adults, version 1.0.

Built from the registry record as found (docs/protocol-NCT06946485.md), which is incomplete: no
exclusion criteria, no dose, no lymphodepletion regimen, no visit schedule. What it states is
encoded; what it does not is listed as not encoded with the reason (kit/criteria.py), never taken
from another trial.

A protocol package: ``HISTORY`` is what its ``trialguard.protocols`` entry point gives the engine.
"""

from collections.abc import Iterable

from protocol.model import Parameter, Protocol
from protocol.nct06946485 import consent, inclusion, safety, screening, treatment
from protocol.nct06946485.design import ARMS, VISIT_SCHEDULE
from protocol.nct06946485.parameters import PARAMETERS as _NUMBERS
from protocol.nct06946485.terms import Terms
from protocol.versions import ProtocolHistory, Version

PARAMETERS: tuple[Parameter, ...] = (*_NUMBERS, VISIT_SCHEDULE)

FACT_DERIVATIONS = (
    screening.screening_facts,
    inclusion.inclusion_facts,
    consent.consent_facts,
    treatment.treatment_facts,
    safety.safety_facts,
)

SECTIONS = (inclusion, screening, consent, treatment, safety)


def build(version: str, parameters: Iterable[Parameter] = PARAMETERS) -> Protocol:
    """A version of the protocol with these parameter values.

    Raises:
        KeyError: a parameter the sections read is missing.
    """
    parameters = tuple(parameters)
    terms = Terms(parameters)
    return Protocol(
        study_id="NCT06946485",
        version=version,
        title="Universal anti-CD70 CAR-T (CHT101) for relapsed refractory systemic lupus erythematosus",
        arms=ARMS,
        parameters=parameters,
        schedule=terms[VISIT_SCHEDULE],
        steps=terms.steps,
        fact_sources=tuple(derivation.bound(terms) for derivation in FACT_DERIVATIONS),
        rules=tuple(rule for section in SECTIONS for rule in section.rules(terms)),
        rebuild=build,
    )


PROTOCOL = build("1.0")

HISTORY = ProtocolHistory([Version(PROTOCOL)])
"""The study's versions: the record shows no amendment, so v1.0, in force from the beginning."""
