"""Where a protocol package keeps its authoring kit: scenarios, their words, the record's criteria.

A package ``protocol.x`` (the package of its fact derivations) ships:
- ``protocol/x/scenarios/*.feature``: its scenario tests;
- ``protocol.x.kit.steps.VOCABULARY``: the base journeys and overrides they are written in;
- ``protocol.x.kit.criteria.CRITERIA``: the registry record's criteria and how each is encoded;
- ``protocol.x.kit.simulation.PROFILE`` (optional): what a cohort simulator needs that the
  :class:`~protocol.model.Protocol` does not carry (its parameters, schedule and arms it does);
- ``protocol.x.kit.safety.CLOCKS``: the reporting clock of each alert rule (``protocol.reporting``).

The engine reaches a package's kit from a protocol version found through the registry, never by
the package's name.
"""

from __future__ import annotations

import importlib
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from contracts import ParticipantEvent, parse_event
from protocol.criteria import Criterion
from protocol.model import Protocol
from protocol.reporting import ReportingClock, clocks_by_rule
from protocol.scenarios import Scenario, Vocabulary, load_scenarios


class KitError(LookupError):
    """A protocol package without the kit a command needs."""


@dataclass(frozen=True)
class Kit:
    """A protocol package's authoring kit.

    Attributes:
        package: the package's module name.
        scenario_folder: its folder of feature files.
        vocabulary: the words its scenarios are written in.
        criteria: the registry record's criteria.
    """

    package: str
    scenario_folder: Path
    vocabulary: Vocabulary
    criteria: tuple[Criterion, ...]

    def scenarios(self, paths: list[Path] | None = None) -> list[Scenario]:
        """The package's scenarios, or those of the given files and folders, in the package's words.

        Raises:
            protocol.scenarios.ScenarioError: a file that cannot be read or bound.
        """
        return load_scenarios(paths or [self.scenario_folder], self.vocabulary)


@dataclass(frozen=True)
class SimulationProfile:
    """What a cohort simulator needs of a protocol package beyond its ``Protocol``.

    Data only: the simulator draws at random, the protocol package never does.

    Attributes:
        screening_labs: the labs a screening must report, in the order the package lists them
            (a simulated "missing lab" drops one of these).
    """

    screening_labs: tuple[str, ...]


def package_of(protocol: Protocol) -> str:
    """The package that defines a protocol version (the package of its fact derivations)."""
    packages = sorted({s.declared.__module__.rpartition(".")[0] for s in protocol.fact_sources})
    if len(packages) != 1:
        raise KitError(f"{protocol.study_id} v{protocol.version}: its facts come from {packages}, not one package")
    return packages[0]


def kit_of(protocol: Protocol) -> Kit:
    """The authoring kit of the package that defines ``protocol``.

    Raises:
        KitError: the package has no ``kit.steps.VOCABULARY`` or ``kit.criteria.CRITERIA``.
    """
    package = package_of(protocol)
    try:
        steps = importlib.import_module(f"{package}.kit.steps")
        criteria = importlib.import_module(f"{package}.kit.criteria")
    except ModuleNotFoundError as e:
        raise KitError(f"{package} has no authoring kit ({e.name}): see README, 'Write a protocol'") from None
    module_file = importlib.import_module(package).__file__
    assert module_file is not None
    return Kit(package, Path(module_file).parent / "scenarios", steps.VOCABULARY, tuple(criteria.CRITERIA))


def simulation_profile(protocol: Protocol) -> SimulationProfile:
    """The simulation profile of the package that defines ``protocol``.

    Raises:
        KitError: the package has no ``kit.simulation.PROFILE``.
    """
    package = package_of(protocol)
    try:
        module = importlib.import_module(f"{package}.kit.simulation")
    except ModuleNotFoundError as e:
        raise KitError(f"{package} has no simulation profile ({e.name})") from None
    profile = module.PROFILE
    if not isinstance(profile, SimulationProfile):
        raise KitError(f"{package}.kit.simulation.PROFILE is a {type(profile).__name__}, not a SimulationProfile")
    return profile


def journey_event(
    study_id: str, event_type: str, payload: Mapping[str, Any] | None, *, participant: str, at: str, site: str
) -> ParticipantEvent:
    """A parsed contract-v1 event of a package's journeys; its id is derived from its fields, so a
    journey (and the findings its scenarios expect) is the same every time."""
    body = {
        "event_type": event_type,
        "schema_version": 1,
        "study_id": study_id,
        "site_id": site,
        "participant_id": participant,
        "occurred_at": at,
        "recorded_at": at,
        "source": {"system": "test", "actor": "tester"},
        "payload": dict(payload or {}),
    }
    event_id = str(uuid.uuid5(uuid.NAMESPACE_OID, json.dumps(body, sort_keys=True)))
    return parse_event(json.dumps({"event_id": event_id, **body}))


@dataclass(frozen=True)
class Extra:
    """An event added to a journey, at a study day or a day after the infusion."""

    event_type: str
    payload: Mapping[str, Any] | None
    day: int
    time: str = "15:00:00"
    after_infusion: bool = False


def reporting_clocks(protocol: Protocol) -> Mapping[str, ReportingClock]:
    """The reporting clock of each alert rule of ``protocol``, by rule id, from its package's kit
    (``kit.safety.CLOCKS``).

    Raises:
        KitError: the package declares no clocks.
        protocol.reporting.ReportingClockError: the clocks do not match the version's alert rules.
    """
    package = package_of(protocol)
    try:
        module = importlib.import_module(f"{package}.kit.safety")
    except ModuleNotFoundError as e:
        raise KitError(f"{package} declares no reporting clocks ({e.name})") from None
    return clocks_by_rule(protocol, module.CLOCKS)
