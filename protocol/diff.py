"""What an amendment changes between two versions of a protocol: rules, parameters, schedule, steps.

Rules are compared by id (condition in words, severity, category and the rest of the
declaration), parameters by name, visit windows by code. Each change is listed once, where it was
made: a new limit is its parameter's change, not also a change of every rule that compares with
it (a rule is listed when its declaration differs with the parameters' values left out); a new
visit window is the visit's change, not also one of the parameter that holds the schedule. Pure.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from protocol.model import Parameter, Protocol, RuleSpec
from protocol.wording import condition_words


@dataclass(frozen=True)
class Change:
    """One difference: what (``rule``, ``parameter``, ``visit``, ``step``, ``arm``), which, how."""

    what: str
    name: str
    change: str
    """"added", "removed" or "changed"."""
    fields: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    """For "changed": each field that differs, (before, after)."""

    def as_json(self) -> dict[str, Any]:
        """A JSON-ready form."""
        return {
            "what": self.what,
            "name": self.name,
            "change": self.change,
            "fields": {k: {"before": _plain(a), "after": _plain(b)} for k, (a, b) in self.fields.items()},
        }

    def __str__(self) -> str:
        head = f"{self.what} {self.name} {self.change}"
        return head + "".join(f"\n    {k}: {_shown(a)} -> {_shown(b)}" for k, (a, b) in self.fields.items())


def diff(before: Protocol, after: Protocol) -> list[Change]:
    """The changes from ``before`` to ``after``, rules first, each group in ``after``'s order."""
    return [
        *_rules(before, after),
        *_keyed("parameter", {p.name: _parameter(p, before) for p in before.parameters},
                {p.name: _parameter(p, after) for p in after.parameters}),
        *_keyed("visit", {w.code: {"day": w.day, "window_days": w.window_days} for w in before.schedule},
                {w.code: {"day": w.day, "window_days": w.window_days} for w in after.schedule}),
        *_keyed("step", {s.event_type: {"after": s.after} for s in before.steps},
                {s.event_type: {"after": s.after} for s in after.steps}),
        *_keyed("arm", {a.name: {"target_cells_per_kg": a.target_cells_per_kg,
                                 "target_total_cells": a.target_total_cells} for a in before.arms},
                {a.name: {"target_cells_per_kg": a.target_cells_per_kg,
                          "target_total_cells": a.target_total_cells} for a in after.arms}),
    ]  # fmt: skip


def _rules(before: Protocol, after: Protocol) -> list[Change]:
    """Rules added, removed, or whose declaration changed beyond the values of its parameters."""
    changes = _keyed("rule", {r.rule_id: _rule(r, before) for r in before.rules},
                     {r.rule_id: _rule(r, after) for r in after.rules})  # fmt: skip
    return [c for c in changes if c.change != "changed" or not _only_values(c, before, after)]


def _only_values(change: Change, before: Protocol, after: Protocol) -> bool:
    """Whether a rule changed only as the values of the parameters it names did: the same
    declaration, and each constant of its condition that was a parameter's value is that
    parameter's value still, whether it changed or not (a limit compiled into the condition)."""
    if set(change.fields) - {"condition", "parameter_values"}:
        return False
    old, new = before.rule(change.name), after.rule(change.name)
    return _same_but_values(
        old.when.define(),
        new.when.define(),
        _by_value(before.parameters_of(old.rule_id)),
        _by_value(after.parameters_of(new.rule_id)),
    )


def _same_but_values(old: Any, new: Any, old_values: dict[str, set[str]], new_values: dict[str, set[str]]) -> bool:
    if isinstance(old, dict) and isinstance(new, dict):
        return old.keys() == new.keys() and all(_same_but_values(old[k], new[k], old_values, new_values) for k in old)
    if isinstance(old, list) and isinstance(new, list):
        return len(old) == len(new) and all(
            _same_but_values(a, b, old_values, new_values) for a, b in zip(old, new, strict=True)
        )
    was = old_values.get(json.dumps(old), set())
    if type(old) is type(new) and old == new and not was:
        return True  # a constant of its own, not a parameter's
    return bool(was & new_values.get(json.dumps(new), set()))  # a parameter's value, before and after


def _by_value(parameters: tuple[Parameter, ...]) -> dict[str, set[str]]:
    """Parameter names by the JSON of each value they hold (a range's ends each count)."""
    names: dict[str, set[str]] = {}
    for p in parameters:
        for value in p.value if isinstance(p.value, tuple) else (p.value,):
            if isinstance(value, bool | int | float | str):
                names.setdefault(json.dumps(value), set()).add(p.name)
    return names


def _rule(rule: RuleSpec, protocol: Protocol) -> dict[str, Any]:
    return {
        "condition": condition_words(rule, protocol),
        "kind": rule.kind.value,
        "category": None if rule.category is None else rule.category.value,
        "severity": None if rule.severity is None else rule.severity.value,
        "reference": rule.reference,
        "term": rule.term,
        "evidence": list(rule.evidence),
        "once_per": rule.once_per.value,
        "parameters": list(rule.parameters),
        "parameter_values": {p.name: _plain(p.value) for p in protocol.parameters_of(rule.rule_id)},
    }


def _parameter(parameter: Parameter, protocol: Protocol) -> dict[str, Any]:
    schedule = parameter.value == protocol.schedule and isinstance(parameter.value, tuple) and bool(protocol.schedule)
    return {
        "value": "the visit schedule (see its visits)" if schedule else _plain(parameter.value),
        "unit": parameter.unit,
        "source": parameter.source,
        "assumption": parameter.assumption,
    }


def _keyed(what: str, before: dict[str, dict[str, Any]], after: dict[str, dict[str, Any]]) -> list[Change]:
    changes = [Change(what, name, "removed") for name in before if name not in after]
    for name, now in after.items():
        if name not in before:
            changes.append(Change(what, name, "added"))
        elif fields := {k: (before[name].get(k), v) for k, v in now.items() if before[name].get(k) != v}:
            changes.append(Change(what, name, "changed", fields))
    return changes


def _plain(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if hasattr(value, "__dataclass_fields__"):
        return {k: _plain(getattr(value, k)) for k in value.__dataclass_fields__}
    return value


def _shown(value: Any) -> str:
    return "(none)" if value is None else str(value)
