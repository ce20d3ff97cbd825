"""What an amendment changes between two versions of a protocol: rules, parameters, schedule, steps.

Rules are compared by id (condition in words, severity, category and the rest of the
declaration), parameters by name, visit windows by code. Each change is listed once, where it was
made: a new limit is its parameter's change, not also a change of every rule that compares with
it (a rule is listed when its declaration differs with the parameters' values left out); a new
visit window is the visit's change, not also one of the parameter that holds the schedule. Pure.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from protocol.model import Parameter, Protocol, RuleSpec
from protocol.wording import condition_form, condition_words


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
        *_keyed("arm", {a.name: {"target_cells_per_kg": a.target_cells_per_kg} for a in before.arms},
                {a.name: {"target_cells_per_kg": a.target_cells_per_kg} for a in after.arms}),
    ]  # fmt: skip


def _rules(before: Protocol, after: Protocol) -> list[Change]:
    """Rules added, removed, or whose declaration changed beyond the values of its parameters."""
    changes = _keyed("rule", {r.rule_id: _rule(r, before) for r in before.rules},
                     {r.rule_id: _rule(r, after) for r in after.rules})  # fmt: skip
    return [
        c
        for c in changes
        if c.change != "changed" or _declaration(before.rule(c.name), before) != _declaration(after.rule(c.name), after)
    ]


def _declaration(rule: RuleSpec, protocol: Protocol) -> dict[str, Any]:
    """A rule as declared, its parameters by name only."""
    declared = _rule(rule, protocol)
    del declared["parameter_values"]
    return {**declared, "condition": condition_form(rule, protocol)}


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
