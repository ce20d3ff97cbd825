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
import math
from typing import Any

from durable.engine import MessageNotHandledException
from durable.lang import assert_fact, retract_fact, ruleset, when_all

from protocol.model import Facts, Protocol, RuleSpec

_names = itertools.count()


VERDICTS_KEPT = 8192
"""Verdicts the engine remembers (see ``Engine.matching``); all are forgotten when full."""

REMEMBERED_FACTS_AT_MOST = 12
"""Verdicts on facts with more read values than this are not remembered: such a fact (the
forty-odd values of an enrollment) is never asked about twice, and its key would cost memory."""


class Engine:
    """The durable_rules ruleset of one protocol version."""

    def __init__(self, protocol: Protocol) -> None:
        _check_thresholds(protocol)
        self.protocol = protocol
        self.read = _names_read(protocol)  # the fact names conditions read (None: unknown)
        self._verdicts: dict[tuple[Any, ...], list[RuleSpec]] = {}
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
        """The rules whose condition holds for ``facts``, in catalogue order.

        The engine's verdict on a fact depends only on the values its conditions read (working
        memory is empty between facts, and no condition reads the clock or state), so a verdict
        is remembered under those values and the engine consulted once per distinct set of them:
        a visit inside its window, a grade-1 event that is not serious, ... Most consults asked
        the same question again, and nearly all of them match nothing.
        """
        if self.read is None:
            return self._consult(facts)
        read = self.read
        # The type is part of the key: True == 1, but a condition ``== true`` tells them apart.
        key = tuple(
            (name, type(value), tuple(value) if type(value) is list else value)
            for name, value in facts.items()
            if name in read
        )
        if len(key) > REMEMBERED_FACTS_AT_MOST:
            return self._consult(facts)
        verdict = self._verdicts.get(key)
        if verdict is None:
            if len(self._verdicts) >= VERDICTS_KEPT:
                self._verdicts.clear()
            verdict = self._verdicts[key] = self._consult(facts)
        return verdict

    def _consult(self, facts: Facts) -> list[RuleSpec]:
        self._matched.clear()
        fact = {name: _readable(value) for name, value in facts.items()}
        try:
            assert_fact(self.name, fact)
        except MessageNotHandledException:
            return []  # no rule matched: the fact was not stored
        finally:
            # Some rules may have matched; the fact is in working memory until retracted.
            if self._matched:
                retract_fact(self.name, fact)
        return [self.protocol.rules[i] for i in sorted(set(self._matched))]


def _names_read(protocol: Protocol) -> frozenset[str] | None:
    """Every fact name some rule condition reads; None when a condition reads state or anything
    this cannot name (then every fact goes to the engine)."""
    names: set[str] = set()

    def walk(node: Any) -> bool:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "$s":
                    return False  # durable_rules state: not a function of the fact alone
                if key == "$m" and isinstance(value, str):
                    names.add(value)  # another fact's value on the right of a comparison
                elif not key.startswith("$"):
                    names.add(key)
                if not walk(value):
                    return False
        elif isinstance(node, list):
            return all(walk(item) for item in node)
        return True

    for rule in protocol.rules:
        try:
            definition = rule.when.define()
        except Exception:
            return None
        if not walk(definition):
            return None
    return frozenset(names)


def _readable(value: Any) -> Any:
    """A fact value as durable_rules can read it.

    Its JSON reader takes an exponent only after a fraction: "1.5e-05" but not "1e-05", which is
    how Python writes 0.00001 (and 1e+16 for 10**16), and fails with error 204 on the whole fact.
    A float written so is given as its neighbour towards zero instead (9.999999999999999e-06):
    one unit in the last place away, so only a threshold equal to the value itself could compare
    differently, and ``_check_thresholds`` makes sure no parameter of the protocol is one.
    """
    if isinstance(value, float) and "." not in repr(value) and math.isfinite(value):
        return math.nextafter(value, 0.0)
    if isinstance(value, list):
        return [_readable(v) for v in value]
    return value


def _check_thresholds(protocol: Protocol) -> None:
    """Refuse a protocol with a number that ``_readable`` would move (see there)."""
    for parameter in protocol.parameters:
        values = parameter.value if isinstance(parameter.value, tuple) else (parameter.value,)
        if any(isinstance(v, float) and _readable(v) != v for v in values):
            raise ValueError(
                f"{protocol.study_id} v{protocol.version}: parameter {parameter.name} = {parameter.value!r} cannot "
                "be compared by durable_rules exactly; write it with more significant digits or in other units"
            )


_engines: dict[int, Engine] = {}


def engine_for(protocol: Protocol) -> Engine:
    """The engine of a protocol, built once per process."""
    engine = _engines.get(id(protocol))
    if engine is None or engine.protocol is not protocol:
        engine = _engines[id(protocol)] = Engine(protocol)
    return engine
