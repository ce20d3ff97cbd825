"""A protocol package's journey words: its named base journeys and the overrides a step may say.

The package declares them; the parser binds each Given/When step of a scenario to exactly one of
them, so a scenario that says something the package does not know fails when it is read, naming
its file and line.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Protocol

from contracts import ParticipantEvent


class Journey(Protocol):
    """A participant's journey being built: steps change it, then it gives its events."""

    def events(self) -> list[ParticipantEvent]:
        """The participant's events, in log order."""
        ...


StepFunction = Callable[..., None]


class Vocabulary:
    """The base journeys and override steps of one protocol package."""

    def __init__(self) -> None:
        self.journeys: dict[str, Callable[[], Journey]] = {}
        self._steps: list[tuple[re.Pattern[str], StepFunction]] = []

    def journey(self, name: str) -> Callable[[Callable[[], Journey]], Callable[[], Journey]]:
        """Declare a base journey: ``Given <name>`` starts a scenario from what the function builds."""

        def declare(make: Callable[[], Journey]) -> Callable[[], Journey]:
            self.journeys[name] = make
            return make

        return declare

    def step(self, pattern: str) -> Callable[[StepFunction], StepFunction]:
        """Declare an override: a step matching ``pattern`` (whole text) calls the function with the
        journey and the pattern's named groups (strings), and ``table``/``doc`` when the step has them."""

        def declare(function: StepFunction) -> StepFunction:
            self._steps.append((re.compile(pattern), function))
            return function

        return declare

    def match(self, text: str) -> tuple[StepFunction, dict[str, Any]]:
        """The step function and arguments for a step's text.

        Raises:
            LookupError: no declared step matches, or more than one does (says which).
        """
        found = [(f, m.groupdict()) for p, f in self._steps if (m := p.fullmatch(text.strip()))]
        if not found:
            raise LookupError(f"no step of this protocol's vocabulary says {text.strip()!r}")
        if len(found) > 1:
            names = ", ".join(f.__name__ for f, _ in found)
            raise LookupError(f"{text.strip()!r} matches more than one step ({names})")
        return found[0]

    def phrases(self) -> list[tuple[str, str]]:
        """Every override: (pattern, first line of its docstring), in declared order."""
        return [(p.pattern, (f.__doc__ or "").strip().splitlines()[0] if f.__doc__ else "") for p, f in self._steps]
