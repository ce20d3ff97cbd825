"""Scenario tests a clinician can review: Gherkin ``.feature`` files shipped in a protocol package.

A scenario is a participant's journey (a named base journey of the package, with readable
overrides and explicit events) and the findings it expects, and those it does not. This package
only reads and binds them (pure, no I/O beyond reading the files asked for); ``events.scenarios``
runs them through the one processing step.
"""

from protocol.scenarios.expect import Expectation
from protocol.scenarios.model import BoundStep, Scenario, ScenarioError
from protocol.scenarios.parse import load_scenarios, parse_feature
from protocol.scenarios.vocabulary import Journey, Vocabulary

__all__ = [
    "BoundStep",
    "Expectation",
    "Journey",
    "Scenario",
    "ScenarioError",
    "Vocabulary",
    "load_scenarios",
    "parse_feature",
]
