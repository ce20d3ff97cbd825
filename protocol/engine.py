"""durable_rules does the matching: which rules' conditions hold for one event's facts.

Used so that the engine holds nothing the log cannot rebuild (DESIGN.md, "Known properties"):
- every rule is a single pattern over one fact set that carries everything the protocol derived
  for the event, so nothing waits half-matched across events;
- the fact set is asserted and retracted at once, so working memory is empty between events
  (a message would stop at the first rule it matches; a fact is seen by every rule);
- no timers, no statecharts, no wall clock; "nothing matched" is the normal case, not an error.
"""

from __future__ import annotations

import itertools
from typing import Any

from durable.engine import MessageNotHandledException
from durable.lang import assert_fact, retract_fact, ruleset, when_all

from protocol.model import Facts, Protocol, RuleSpec

_names = itertools.count()


class Engine:
    """The durable_rules ruleset of one protocol version."""

    def __init__(self, protocol: Protocol) -> None:
        self.protocol = protocol
        # Ruleset names are global to the durable_rules host: make each engine's unique.
        self.name = f"{protocol.study_id}-v{protocol.version}-{next(_names)}"
        self._matched: list[int] = []
        with ruleset(self.name):
            for index, rule in enumerate(protocol.rules):
                when_all(rule.when)(self._recorder(index))

    def _recorder(self, index: int) -> Any:
        def record(_: Any) -> None:
            self._matched.append(index)

        return record

    def matching(self, facts: Facts) -> list[RuleSpec]:
        """The rules whose condition holds for ``facts``, in catalogue order."""
        self._matched.clear()
        try:
            assert_fact(self.name, facts)
        except MessageNotHandledException:
            return []  # no rule matched: the fact was not stored
        finally:
            # Some rules may have matched; the fact is in working memory until retracted.
            if self._matched:
                retract_fact(self.name, facts)
        return [self.protocol.rules[i] for i in sorted(set(self._matched))]


_engines: dict[int, Engine] = {}


def engine_for(protocol: Protocol) -> Engine:
    """The engine of a protocol, built once per process."""
    engine = _engines.get(id(protocol))
    if engine is None or engine.protocol is not protocol:
        engine = _engines[id(protocol)] = Engine(protocol)
    return engine
