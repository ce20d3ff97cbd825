"""A rule's condition in plain words, generated from its own declaration, so it cannot drift.

The condition is what the rule declares to durable_rules (``RuleSpec.when.define()``): comparisons
of facts with constants, joined by and/or. A constant equal to the value of a parameter the rule
names is shown with that parameter's name. The facts themselves are derived by the protocol
package's code (``Protocol.fact_sources``): their names are shown as declared, and the document
says so, since code is not words.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from protocol.model import Parameter, Protocol, RuleSpec

_OPERATORS = {
    "$lt": "is below",
    "$lte": "is at most",
    "$gt": "is above",
    "$gte": "is at least",
    "$neq": "is not",
}


def condition_words(rule: RuleSpec, protocol: Protocol) -> str:
    """The rule's condition in words: ``age_at_consent is below 6 (age_min) or ...``."""
    values = _parameter_values(protocol.parameters_of(rule.rule_id))
    return _words(rule.when.define(), values, top=True)


def condition_form(rule: RuleSpec, protocol: Protocol) -> str:
    """The rule's condition in words with each parameter's value left out: ``age_at_consent is
    below age_min or ...``. Two versions whose rule differs only by the values of the parameters
    it names give the same form (the change is the parameters', not the rule's)."""
    values = _parameter_values(protocol.parameters_of(rule.rule_id))
    return _words(rule.when.define(), values, top=True, symbolic=True)


def _parameter_values(parameters: tuple[Parameter, ...]) -> dict[str, list[str]]:
    """Parameter names by the JSON of each value they hold (a range's ends each count)."""
    by_value: dict[str, list[str]] = {}
    for p in parameters:
        values = p.value if isinstance(p.value, tuple) else (p.value,)
        for v in values:
            if isinstance(v, bool | int | float | str):
                by_value.setdefault(json.dumps(v), []).append(p.name)
    return by_value


def _constant(value: Any, parameters: Mapping[str, list[str]], fact: str = "", *, symbolic: bool = False) -> str:
    """A constant, with the parameter it is the value of; when several parameters hold it, those
    whose name shares a word with the fact's (``lymphocytes`` and ``lymphocytes_min``), else all.
    ``symbolic``: the parameter's name alone."""
    shown = "true" if value is True else "false" if value is False else str(value)
    names = parameters.get(json.dumps(value)) if not isinstance(value, bool) else None
    if not names:
        return shown
    words = set(fact.split("_"))
    names = [n for n in names if words & set(n.split("_"))] or names
    if symbolic:
        return " or ".join(names)
    return f"{shown} ({names[0]})" if len(names) == 1 else f"{shown} (the value of {' or '.join(names)})"


def _words(node: Any, parameters: Mapping[str, list[str]], *, top: bool = False, symbolic: bool = False) -> str:
    if not isinstance(node, dict) or len(node) != 1:
        return f"[a condition this rendering cannot read: {json.dumps(node, default=str)}]"
    ((key, value),) = node.items()
    if key in ("$and", "$or") and isinstance(value, list):
        joiner = " and " if key == "$and" else " or "
        text = joiner.join(_words(v, parameters, symbolic=symbolic) for v in value)
        return text if top else f"({text})"
    if key == "$ex" and isinstance(value, dict):
        return " and ".join(f"{name} is present" for name in value)
    if key == "$nex" and isinstance(value, dict):
        return " and ".join(f"{name} is absent" for name in value)
    if key in _OPERATORS and isinstance(value, dict) and len(value) == 1:
        ((fact, constant),) = value.items()
        if isinstance(constant, dict) and "$m" in constant:
            return f"{fact} {_OPERATORS[key]} {constant['$m']}"
        return f"{fact} {_OPERATORS[key]} {_constant(constant, parameters, fact, symbolic=symbolic)}"
    if not key.startswith("$"):
        if key == "event_type":
            return f"the event is {value}"
        if isinstance(value, dict) and "$m" in value:
            return f"{key} is {value['$m']}"
        return f"{key} is {_constant(value, parameters, symbolic=symbolic)}"
    return f"[a condition this rendering cannot read: {json.dumps(node, default=str)}]"
