"""What a parsed scenario is: where it was written, its journey, and what it expects."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from protocol.scenarios.expect import Expectation


class ScenarioError(ValueError):
    """A scenario that cannot be read or bound: says the file, the line and what is wrong."""

    def __init__(self, path: str, line: int, problem: str) -> None:
        super().__init__(f"{path}:{line}: {problem}")
        self.path, self.line, self.problem = path, line, problem


@dataclass(frozen=True)
class BoundStep:
    """A Given/When step matched to the package's vocabulary.

    Attributes:
        text: the step as written (outline placeholders filled in).
        line: its line in the feature file.
        apply: the vocabulary's function; it changes the journey being built.
        arguments: the named groups of the step's pattern, plus ``table`` and ``doc`` when the
            step carries a data table or a doc string.
    """

    text: str
    line: int
    apply: Callable[..., None]
    arguments: dict[str, Any]


@dataclass(frozen=True)
class Scenario:
    """One scenario (one row of an outline's examples counts as one).

    Attributes:
        path: the feature file it was read from.
        feature: the feature's name.
        name: the scenario's name (an outline row's values appended).
        line: the line of the scenario (of the example row for an outline).
        tags: the feature's, the scenario's and the examples' tags, without "@".
        journey: the base journey's name ("an eligible participant").
        steps: the overrides, in order.
        expectations: the Then steps.
    """

    path: str
    feature: str
    name: str
    line: int
    tags: frozenset[str]
    journey: str
    steps: tuple[BoundStep, ...]
    expectations: tuple[Expectation, ...]

    @property
    def boundary(self) -> bool:
        """A boundary scenario: the value just inside a limit; its "not raised" rules are what it proves."""
        return "boundary" in self.tags

    @property
    def versions(self) -> frozenset[str] | None:
        """The protocol versions it applies to (tag ``@versions:1.0,1.1``); None: every version."""
        named = {v for tag in self.tags if tag.startswith("versions:") for v in tag.split(":", 1)[1].split(",")}
        return frozenset(named) if named else None

    def applies_to(self, version: str) -> bool:
        """Whether the scenario is run under this protocol version."""
        return self.versions is None or version in self.versions

    @property
    def where(self) -> str:
        """``path:line``, for messages."""
        return f"{self.path}:{self.line}"

    def raises(self) -> set[str]:
        """The rule ids it expects raised."""
        return {e.rule_id for e in self.expectations if e.rule_id is not None and e.raised}

    def proves_not_raised(self) -> set[str]:
        """The rule ids it expects not raised, by name."""
        return {e.rule_id for e in self.expectations if e.rule_id is not None and not e.raised}
