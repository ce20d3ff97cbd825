"""Compare two sets of findings by id: what one side raised that the other did not, or raised differently.

Pure: JSON objects in, a ``Diff`` out, and the two renderings (a table, a JSON document). A
finding is identified by its ``deviation_id`` or ``alert_id`` (uuid5 of study, participant, rule
and triggers: the same problem gets the same id on either side); a FindingSuperseded by the
superseded finding's id and the correcting event's id. Two findings with one id are
compared field by field on their JSON values; by default no field is ignored, since a recomputed
finding must be byte-for-byte what the live service committed. A comparison of two protocol
versions (a shadow run) ignores the fields that name the version.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

ID_FIELDS = ("deviation_id", "alert_id")

VERSION_FIELDS = frozenset({"protocol_version", "ruleset_fingerprint"})
"""Fields that differ between two protocol versions by design: ignored when comparing them."""

EXIT_EQUAL, EXIT_DIFFERENT, EXIT_USAGE = 0, 1, 2

NO_RULE = "?"


def finding_id(obj: object) -> str | None:
    """The id of a finding object; None when it is not a JSON object with one.

    A FindingSuperseded is identified by the finding it supersedes and the correction that did
    (``<finding_id>+<superseded_by_event_id>``): one finding may be superseded, raised again and
    superseded again by later corrections.
    """
    if not isinstance(obj, Mapping):
        return None
    if obj.get("event_type") == "FindingSuperseded":
        target, by = obj.get("finding_id"), obj.get("superseded_by_event_id")
        return f"{target}+{by}" if isinstance(target, str) and target and isinstance(by, str) and by else None
    for name in ID_FIELDS:
        if isinstance(value := obj.get(name), str) and value:
            return value
    return None


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def differing_fields(
    left: Mapping[str, Any], right: Mapping[str, Any], ignore: frozenset[str] = frozenset()
) -> list[str]:
    """The fields whose values differ (absent counts as a value); ``evidence`` by its keys.

    Returns:
        Field names, sorted; ``evidence.<name>`` for a differing evidence value, so that a
        reader sees which value a rule saw differently.
    """
    out: list[str] = []
    for name in sorted((left.keys() | right.keys()) - ignore):
        a, b = left.get(name), right.get(name)
        if name in left and name in right and _canonical(a) == _canonical(b):
            continue
        if name == "evidence" and isinstance(a, Mapping) and isinstance(b, Mapping):
            out += [
                f"evidence.{k}"
                for k in sorted(a.keys() | b.keys())
                if _canonical(a.get(k)) != _canonical(b.get(k)) or (k in a) != (k in b)
            ]
        else:
            out.append(name)
    return out


@dataclass(frozen=True)
class Changed:
    """One id on both sides with different content."""

    finding_id: str
    rule_id: str
    participant_id: str
    fields: tuple[str, ...]


@dataclass
class RuleCounts:
    """Per rule id: findings on each side, and how they compare."""

    expected: int = 0
    actual: int = 0
    same: int = 0
    missing: int = 0
    extra: int = 0
    changed: int = 0


@dataclass
class Diff:
    """The comparison of ``expected`` (e.g. recomputed) with ``actual`` (e.g. committed) findings.

    Attributes:
        expected_name: what the expected side is, for the reader.
        actual_name: what the actual side is.
        missing: expected findings absent from actual, in expected order.
        extra: actual findings absent from expected, in actual order.
        changed: ids on both sides with different content.
        same: ids on both sides with equal content.
        unidentified: actual records that are not findings with an id (unreadable bytes, a
            forged object); each makes the sides differ.
        duplicates: ids seen again on the same side (the second copy is not compared).
        by_rule: counts per rule id.
        ignored: the fields left out of the comparison.
    """

    expected_name: str
    actual_name: str
    missing: list[Mapping[str, Any]] = field(default_factory=list)
    extra: list[Mapping[str, Any]] = field(default_factory=list)
    changed: list[Changed] = field(default_factory=list)
    same: int = 0
    unidentified: list[object] = field(default_factory=list)
    duplicates: int = 0
    by_rule: dict[str, RuleCounts] = field(default_factory=dict)
    ignored: frozenset[str] = frozenset()

    @property
    def equal(self) -> bool:
        return not (self.missing or self.extra or self.changed or self.unidentified or self.duplicates)

    @property
    def exit_code(self) -> int:
        """0 when the sides are equal, 1 otherwise."""
        return EXIT_EQUAL if self.equal else EXIT_DIFFERENT

    def _rule(self, obj: Mapping[str, Any]) -> RuleCounts:
        rule = obj.get("rule_id")
        return self.by_rule.setdefault(rule if isinstance(rule, str) else NO_RULE, RuleCounts())


def compare(
    expected: Iterable[object],
    actual: Iterable[object],
    *,
    expected_name: str = "expected",
    actual_name: str = "actual",
    ignore: frozenset[str] = frozenset(),
) -> Diff:
    """Compare two sides by finding id.

    Args:
        expected: finding objects (decoded JSON) of the side taken as right.
        actual: finding objects of the side checked; anything that is not a finding object
            with an id is counted as unidentified.
        expected_name: a name for the expected side.
        actual_name: a name for the actual side.
        ignore: top-level fields left out of the comparison.
    """
    diff = Diff(expected_name, actual_name, ignored=ignore)
    left = _index(expected, diff, unidentified_ok=False)
    right = _index(actual, diff, unidentified_ok=True)
    for fid, obj in left.items():
        counts = diff._rule(obj)
        counts.expected += 1
        other = right.get(fid)
        if other is None:
            diff.missing.append(obj)
            counts.missing += 1
            continue
        if fields := differing_fields(obj, other, ignore):
            participant = obj.get("participant_id")
            diff.changed.append(Changed(fid, str(obj.get("rule_id", NO_RULE)), str(participant), tuple(fields)))
            counts.changed += 1
        else:
            diff.same += 1
            counts.same += 1
    for fid, obj in right.items():
        counts = diff._rule(obj)
        counts.actual += 1
        if fid not in left:
            diff.extra.append(obj)
            counts.extra += 1
    return diff


def _index(side: Iterable[object], diff: Diff, *, unidentified_ok: bool) -> dict[str, Mapping[str, Any]]:
    out: dict[str, Mapping[str, Any]] = {}
    for obj in side:
        fid = finding_id(obj)
        if fid is None or not isinstance(obj, Mapping):
            if not unidentified_ok:
                raise ValueError(f"expected side holds an object without a finding id: {str(obj)[:80]}")
            diff.unidentified.append(obj)
        elif fid in out:
            diff.duplicates += 1
        else:
            out[fid] = obj
    return out


def _brief(obj: Mapping[str, Any]) -> str:
    rule, participant, at = obj.get("rule_id", NO_RULE), obj.get("participant_id", "?"), obj.get("occurred_at", "?")
    return f"{rule} {participant} {finding_id(obj)} at {at}"


def render_table(diff: Diff, limit: int = 50) -> str:
    """The readable report: a verdict, counts per rule, then up to ``limit`` findings of each kind."""
    lines = [
        f"audit diff: {diff.expected_name} (expected) vs {diff.actual_name} (actual): "
        + ("EQUAL" if diff.equal else "DIFFERENT"),
    ]
    if diff.ignored:
        lines.append(f"  fields ignored: {', '.join(sorted(diff.ignored))}")
    header = ("rule", "expected", "actual", "same", "missing", "extra", "changed")
    rows: list[tuple[str, ...]] = [
        (rule, str(c.expected), str(c.actual), str(c.same), str(c.missing), str(c.extra), str(c.changed))
        for rule, c in sorted(diff.by_rule.items())
    ]
    totals = [sum(int(r[i]) for r in rows) for i in range(1, len(header))]
    rows.append(("total", *(str(t) for t in totals)))
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        lines.append(
            "  "
            + "  ".join(
                cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths, strict=True))
            )
        )
    sections: list[tuple[str, list[str]]] = [
        (f"missing (in {diff.expected_name}, not in {diff.actual_name})", [_brief(o) for o in diff.missing]),
        (f"extra (in {diff.actual_name}, not in {diff.expected_name})", [_brief(o) for o in diff.extra]),
        (
            "changed (same id, different content)",
            [f"{c.rule_id} {c.participant_id} {c.finding_id}: {', '.join(c.fields)}" for c in diff.changed],
        ),
        (f"not findings (in {diff.actual_name})", [str(o)[:120] for o in diff.unidentified]),
    ]
    for title, items in sections:
        if items:
            lines.append(f"{title}: {len(items)}")
            lines += [f"  {item}" for item in items[:limit]]
            if len(items) > limit:
                lines.append(f"  … and {len(items) - limit} more (--format json lists all)")
    if diff.duplicates:
        lines.append(f"duplicate ids: {diff.duplicates} (a finding id committed more than once)")
    return "\n".join(lines) + "\n"


def to_json(diff: Diff) -> dict[str, Any]:
    """The whole diff as one JSON-ready object (every finding listed, nothing truncated)."""
    return {
        "equal": diff.equal,
        "expected": diff.expected_name,
        "actual": diff.actual_name,
        "ignored_fields": sorted(diff.ignored),
        "same": diff.same,
        "missing": list(diff.missing),
        "extra": list(diff.extra),
        "changed": [
            {
                "finding_id": c.finding_id,
                "rule_id": c.rule_id,
                "participant_id": c.participant_id,
                "fields": list(c.fields),
            }
            for c in diff.changed
        ],
        "unidentified": [o if isinstance(o, (dict, list, str, int, float)) else repr(o) for o in diff.unidentified],
        "duplicates": diff.duplicates,
        "by_rule": {rule: vars(c) for rule, c in sorted(diff.by_rule.items())},
    }
