"""The protocol the simulator writes cohorts for, found through the protocol registry by study id.

The simulator is NCT06904729's (its catalogue injects that study's rule ids), but it reads the
numbers, visit schedule and arm doses from the protocol version the registry gives, and the
screening labs from that package's simulation profile (``protocol.kit.simulation_profile``): the
engine side imports no trial module by name. The labels are those of version 1.0, so that is the
version it reads (a later amendment leaves the simulated cohorts unchanged).

Looked up on first use, not on import: ``trialguard`` imports the simulator for every command.
"""

from __future__ import annotations

import functools
from typing import Any

from protocol.kit import simulation_profile
from protocol.model import Protocol, VisitWindow
from protocol.registry import versions_for
from services.simulator.clock import STUDY_ID

SIMULATED_VERSION = "1.0"
"""The protocol version whose deviations the simulator injects and labels."""


@functools.cache
def simulated_protocol() -> Protocol:
    """The simulated study's protocol version ``SIMULATED_VERSION``, from the registry.

    Raises:
        protocol.registry.ProtocolLookupError: the study's package is not installed or does not load.
    """
    return versions_for(STUDY_ID).version(SIMULATED_VERSION)


def value_of(parameter: str) -> Any:
    """A parameter's value, by name."""
    return simulated_protocol().parameter(parameter).value


def schedule() -> tuple[VisitWindow, ...]:
    """The follow-up visits, in order."""
    return simulated_protocol().schedule


def target_cells_per_kg(arm: str) -> float:
    """An arm's target dose (cells/kg)."""
    target = next(a.target_cells_per_kg for a in simulated_protocol().arms if a.name == arm)
    if target is None:
        raise ValueError(f"arm {arm} has no per-kg target dose to simulate")
    return target


@functools.cache
def screening_labs() -> tuple[str, ...]:
    """The labs a screening must report, in the protocol package's order."""
    return simulation_profile(simulated_protocol()).screening_labs
