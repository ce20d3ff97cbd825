"""Then steps: which findings a scenario expects, and the comparison with what it got.

The words, one per Then (or And after a Then) step:

- ``ELIG-IN09 is raised`` (at least once), ``VISIT-02 is raised twice``, ``... is raised 3 times``;
- ``ELIG-IN09 is raised with alt_uln_multiple = 3.025, egfr_schwartz = 99.87`` (its evidence; a
  data table of name | value rows does the same);
- ``ELIG-IN09 is not raised``;
- ``nothing else is raised`` (no rule the scenario does not expect raised);
- ``nothing is raised``;
- ``the findings are CONSENT-01, ELIG-IN08`` (exactly these, in this order).
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

RULE_ID = r"[A-Z][A-Z0-9]*(?:-[A-Z0-9]+)*"
_TIMES = {"once": 1, "twice": 2}


class Expect(StrEnum):
    RAISED = "raised"
    NOT_RAISED = "not raised"
    NOTHING = "nothing"
    NOTHING_ELSE = "nothing else"
    EXACTLY = "exactly"


@dataclass(frozen=True)
class Expectation:
    """One Then step.

    Attributes:
        kind: what it says.
        text: the step as written.
        line: its line.
        rule_id: the rule it is about (RAISED, NOT_RAISED).
        times: how many findings of the rule (None: at least one).
        evidence: evidence values at least one of the rule's findings quotes.
        rules: the exact findings, in order (EXACTLY).
    """

    kind: Expect
    text: str
    line: int
    rule_id: str | None = None
    times: int | None = None
    evidence: Mapping[str, Any] = field(default_factory=dict)
    rules: tuple[str, ...] = ()

    @property
    def raised(self) -> bool:
        """Whether it expects its rule raised (the rules of EXACTLY are, too)."""
        return self.kind is Expect.RAISED

    def expected_raised(self) -> set[str]:
        """The rule ids this step expects raised."""
        if self.kind is Expect.RAISED and self.rule_id is not None:
            return {self.rule_id}
        return set(self.rules)


_RAISED = re.compile(
    rf"(?P<rule>{RULE_ID}) is raised(?: (?P<times>once|twice|(?P<n>\d+) times))?(?: with (?P<evidence>.+?))?:?"
)
_NOT_RAISED = re.compile(rf"(?P<rule>{RULE_ID}) is not raised")
_EXACTLY = re.compile(rf"the findings are (?P<rules>{RULE_ID}(?:\s*,\s*{RULE_ID})*)")


def parse_expectation(text: str, line: int, table: Sequence[Sequence[str]] | None) -> Expectation | None:
    """The expectation a Then step states (None: none of the forms above)."""
    text = text.strip()
    if text == "nothing is raised":
        return Expectation(Expect.NOTHING, text, line)
    if text == "nothing else is raised":
        return Expectation(Expect.NOTHING_ELSE, text, line)
    if match := _NOT_RAISED.fullmatch(text):
        return Expectation(Expect.NOT_RAISED, text, line, match["rule"])
    if match := _EXACTLY.fullmatch(text):
        return Expectation(Expect.EXACTLY, text, line, rules=tuple(r.strip() for r in match["rules"].split(",")))
    if match := _RAISED.fullmatch(text):
        times = None if match["times"] is None else _TIMES.get(match["times"]) or int(match["n"])
        evidence = _evidence_pairs(match["evidence"], line) if match["evidence"] else {}
        for row in table or ():
            if len(row) != 2:
                raise ValueError(f"an evidence row is: | name | value |, not {len(row)} cells")
            evidence[row[0].strip()] = _value(row[1])
        return Expectation(Expect.RAISED, text, line, match["rule"], times, evidence)
    return None


_PAIR = re.compile(r"\s*(?P<name>\w+)\s*=\s*(?P<value>.+?)\s*(?:,(?=\s*\w+\s*=)|$)")


def _evidence_pairs(text: str, line: int) -> dict[str, Any]:
    """``name = value, name = value`` (a value may hold commas: ``["alt", "ast"]``)."""
    pairs: dict[str, Any] = {}
    text = text.removeprefix("evidence").strip()
    position = 0
    while position < len(text):
        match = _PAIR.match(text, position)
        if match is None or match.end() == position:
            raise ValueError(f"evidence is written name = value, not {text[position:].strip()!r}")
        pairs[match["name"]] = _value(match["value"])
        position = match.end()
    return pairs


def _value(text: str) -> Any:
    """An evidence value as written: JSON (3.025, true, ["D7"]) or else the plain text."""
    text = text.strip()
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _same(expected: Any, got: Any) -> bool:
    if isinstance(expected, int | float) and isinstance(got, int | float) and not isinstance(got, bool):
        return math.isclose(expected, got, rel_tol=0, abs_tol=1e-9)
    return bool(expected == got)


@dataclass(frozen=True)
class Got:
    """A finding as the comparison sees it: its rule id and evidence."""

    rule_id: str
    evidence: Mapping[str, Any]


def compare(expectations: Sequence[Expectation], got: Sequence[Got]) -> list[tuple[Expectation, str, str]]:
    """Each expectation that does not hold: (it, what was expected, what was got)."""
    ids = [g.rule_id for g in got]
    counts = Counter(ids)
    expected_raised = {r for e in expectations for r in e.expected_raised()}
    failures: list[tuple[Expectation, str, str]] = []
    for e in expectations:
        if e.kind is Expect.NOTHING and ids:
            failures.append((e, "no finding", ", ".join(ids)))
        elif e.kind is Expect.NOTHING_ELSE and (others := [r for r in ids if r not in expected_raised]):
            failures.append((e, f"only {', '.join(sorted(expected_raised)) or 'no finding'}", ", ".join(others)))
        elif e.kind is Expect.EXACTLY and tuple(ids) != e.rules:
            failures.append((e, ", ".join(e.rules), ", ".join(ids) or "no finding"))
        elif e.kind is Expect.NOT_RAISED and counts[e.rule_id or ""]:
            failures.append((e, f"no {e.rule_id}", _quoted(e.rule_id, got)))
        elif e.kind is Expect.RAISED:
            failures += _raised_failures(e, got, counts)
    return failures


def _raised_failures(e: Expectation, got: Sequence[Got], counts: Counter[str]) -> list[tuple[Expectation, str, str]]:
    rule = e.rule_id or ""
    n = counts[rule]
    if n == 0:
        others = ", ".join(g.rule_id for g in got) or "no finding"
        return [(e, f"{rule}", f"{others}")]
    if e.times is not None and n != e.times:
        return [(e, f"{rule} {e.times} times", f"{rule} {n} times")]
    if e.evidence and not any(
        all(name in g.evidence and _same(v, g.evidence[name]) for name, v in e.evidence.items())
        for g in got
        if g.rule_id == rule
    ):
        wanted = ", ".join(f"{k} = {json.dumps(v)}" for k, v in e.evidence.items())
        return [(e, f"{rule} with {wanted}", _quoted(rule, got, list(e.evidence)))]
    return []


def _quoted(rule: str | None, got: Sequence[Got], names: Sequence[str] | None = None) -> str:
    """The findings of a rule with their evidence (only ``names`` when given)."""
    shown = []
    for g in got:
        if g.rule_id == rule:
            evidence = {k: v for k, v in g.evidence.items() if names is None or k in names}
            shown.append(f"{rule} with {json.dumps(evidence, sort_keys=True, default=str)}")
    return "; ".join(shown)
