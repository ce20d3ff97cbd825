"""NCT06904729: CAR-T cells for refractory/recurrent lupus nephritis in children, version 1.0.

One module per protocol section; each contributes the facts it derives (a ``FactDerivation`` of
the version's ``Terms``) and its rules (``rules(terms)``, the version's values compiled into their
conditions), in catalogue order. ``build`` makes a version from its parameters: v1.0 is
``build("1.0", PARAMETERS)``, and an amendment (``protocol.versions.amended``) is built the same
way from its own values, as a rule set of its own. Registry record: docs/protocol-NCT06904729.md.

A protocol package: ``HISTORY`` is what its ``trialguard.protocols`` entry point gives the engine
(``pyproject.toml``); nothing outside protocol packages, tests and benchmarks imports this module.
"""

from collections.abc import Iterable

from protocol.model import Arm, Parameter, Protocol
from protocol.nct06904729 import (
    exclusion,
    follow_up,
    inclusion,
    informed_consent,
    safety,
    screening,
    treatment,
)
from protocol.nct06904729.design import ARM_TARGETS, ARMS, STEPS, VISIT_SCHEDULE
from protocol.nct06904729.parameters import PARAMETERS as _NUMBERS
from protocol.nct06904729.terms import Terms
from protocol.versions import ProtocolHistory, Version

PARAMETERS: tuple[Parameter, ...] = (*_NUMBERS, ARM_TARGETS, VISIT_SCHEDULE)
"""Every parameter of v1.0, in the order the protocol lists them."""

FACT_DERIVATIONS = (
    screening.screening_facts,
    inclusion.inclusion_facts,
    exclusion.exclusion_facts,
    informed_consent.consent_facts,
    treatment.treatment_facts,
    follow_up.follow_up_facts,
    safety.safety_facts,
)

SECTIONS = (inclusion, exclusion, screening, informed_consent, treatment, follow_up, safety)
"""The sections whose rules make the catalogue, in catalogue order."""


def build(version: str, parameters: Iterable[Parameter] = PARAMETERS) -> Protocol:
    """A version of the protocol with these parameter values: its rules compiled with them, its
    fact derivations bound to them, its visit schedule and arms' targets taken from them.

    Args:
        version: the version's name, e.g. "1.0".
        parameters: every parameter of the version (by default v1.0's).

    Raises:
        KeyError: a parameter the sections read is missing.
    """
    parameters = tuple(parameters)
    terms = Terms(parameters, STEPS)
    return Protocol(
        study_id="NCT06904729",
        version=version,
        title="CAR-T cells for refractory/recurrent lupus nephritis in children",
        arms=tuple(
            arm
            if arm.target_cells_per_kg == terms.target_cells_per_kg[arm.name]
            else Arm(arm.name, terms.target_cells_per_kg[arm.name], arm.description)
            for arm in ARMS
        ),
        parameters=parameters,
        schedule=terms.schedule,
        steps=terms.steps,
        fact_sources=tuple(derivation.bound(terms) for derivation in FACT_DERIVATIONS),
        rules=tuple(rule for section in SECTIONS for rule in section.rules(terms)),
        rebuild=build,
    )


PROTOCOL = build("1.0")

HISTORY = ProtocolHistory([Version(PROTOCOL)])
"""The study's versions in order: the registry record shows no amendment, so v1.0 is the only one,
in force from the beginning."""
