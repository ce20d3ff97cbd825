"""Why a finding was raised, in sentences: from the rule's own declaration and the finding's evidence.

One generator for the dashboard, the API, the exports, the audit report and the protocol
specification. It is derived when read, never put on the wire: findings and their ids do not change.

The rule's condition (``RuleSpec.when.define()``, what durable_rules was given) is walked against
the evidence. A comparison whose fact the evidence quotes is judged again; one whose fact it does
not quote is taken to have held when the finding could not have been raised otherwise. Each
comparison that held becomes words ("WBC 1.62 ×10⁹/L on 2024-02-09 is below the minimum 3.0
×10⁹/L"), with the unit of the protocol parameter whose value is the limit, and is grouped under
the clause that parameter comes from, quoting the registry record's text ("Inclusion 9.1: …").
Evidence the condition does not test follows as "Also recorded: …".
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from contracts.units import ANALYTES
from protocol.criteria import Criterion
from protocol.kit import KitError, kit_of
from protocol.model import Parameter, Protocol, RuleSpec
from protocol.registry import ProtocolLookupError, versions_for
from services.presentation.wording import label, value_text, with_unit

LAB_EVENT: Final = "ScreeningLabResulted"

_LIMIT_WORDS: Final = {
    "$lt": "is below the minimum",
    "$lte": "is at or below the limit",
    "$gt": "is above the maximum",
    "$gte": "is at or above the threshold",
    "$neq": "is not",
}
_COMPARISONS: Final = {"$lt": operator.lt, "$lte": operator.le, "$gt": operator.gt, "$gte": operator.ge}
_IMPLIED_WORDS: Final = {"$lt": "is below", "$lte": "is at most", "$gt": "is above", "$gte": "is at least"}
_GENERIC_WORDS: Final = frozenset({"min", "max", "days", "of", "the", "within", "uln", "multiple", "default"})
_ANALYTE_ALIASES: Final = {"bilirubin": "total_bilirubin", "egfr": "creatinine", "crcl": "creatinine"}


@dataclass(frozen=True)
class Source:
    """The event that carried a value the rule judged (a lab result, not the enrollment)."""

    fact: str
    event_id: str
    event_type: str
    occurred_at: str


@dataclass(frozen=True)
class Explanation:
    """A finding's why.

    Attributes:
        sentences: the why, in words, first what broke which limit of which clause.
        failing: the evidence names whose values broke a limit (to highlight).
        sources: the events that carried those values.
    """

    sentences: tuple[str, ...]
    failing: frozenset[str] = frozenset()
    sources: tuple[Source, ...] = field(default=())

    @property
    def text(self) -> str:
        """The sentences as one paragraph (the API's ``explanation``, an export's cell)."""
        return " ".join(self.sentences)


@dataclass(frozen=True)
class _Leaf:
    op: str  # "$lt"…, "=" for an equality, "$ex"/"$nex"
    fact: str
    constant: Any
    other: str | None = None  # a comparison with another fact ($m)


Events = Callable[[], Sequence[Mapping[str, Any]]]


def explain(
    finding: Mapping[str, Any],
    protocol: Protocol | None,
    criteria: Sequence[Criterion] = (),
    events: Events = tuple,
) -> Explanation:
    """Why ``finding`` (its JSON body) was raised.

    Args:
        finding: the finding as published (``rule_id``, ``evidence``, ``term``, ``occurred_at``…).
        protocol: the version it was decided under; None when unknown (then the term and evidence).
        criteria: the registry record's criteria of that protocol, to quote.
        events: the participant's events (JSON bodies), asked for only when a value that broke a
            limit may have come from a lab result.
    """
    evidence: Mapping[str, Any] = finding.get("evidence") or {}
    rule = _rule(protocol, str(finding.get("rule_id", "")))
    if rule is None or protocol is None:
        reference = str(finding.get("protocol_reference", ""))
        seen = "; ".join(f"{label(k)}: {value_text(v)}" for k, v in evidence.items())
        said = f"{finding.get('term', '')}" + (f" ({seen})" if seen else "")
        return Explanation((_sentence(said, reference, criteria),))
    tree = rule.when.define()
    if rule.for_each and rule.item_name in evidence:
        evidence = {**evidence, rule.for_each: evidence[rule.item_name]}
    leaves = _reasons(tree, evidence, must_hold=True)
    parameters = protocol.parameters_of(rule.rule_id)
    groups: dict[str, list[str]] = {}
    measured: dict[str, bool] = {}
    failing: set[str] = set()
    sources: list[Source] = []
    for leaf in leaves:
        parameter = _parameter_for(leaf, parameters)
        source = None
        if leaf.fact in evidence and leaf.op in _LIMIT_WORDS:
            source = _lab_source(leaf.fact, str(finding.get("occurred_at", "")), events)
            if source is not None:
                sources.append(source)
        if leaf.fact in finding.get("evidence", {}) or leaf.fact == rule.for_each:
            failing.add(rule.item_name if leaf.fact == rule.for_each else leaf.fact)
        clause = _clause(parameter, rule, criteria)
        groups.setdefault(clause, []).append(_leaf_words(leaf, evidence, parameter, source))
        numeric = leaf.op in _IMPLIED_WORDS and leaf.fact in evidence
        measured[clause] = measured.get(clause, True) and numeric
    tested = _facts(tree) | {rule.item_name}
    rest = [(k, v) for k, v in evidence.items() if k not in tested and k != rule.for_each]
    # A limit a value broke says it all; a yes/no or an implied comparison reads after the rule's term.
    sentences = []
    for clause, words in groups.items():
        said = "; ".join(words) if measured[clause] else f"{rule.term} ({'; '.join(map(_lower, words))})"
        sentences.append(_sentence(said, clause, criteria))
    if not sentences:
        sentences = [_sentence(rule.term, rule.reference, criteria)]
    if rest:
        sentences.append("Also recorded: " + "; ".join(f"{label(k)}: {value_text(v)}" for k, v in rest) + ".")
    return Explanation(tuple(sentences), frozenset(failing), tuple(sources))


def explain_published(finding: Mapping[str, Any], events: Events = tuple) -> Explanation:
    """``explain`` under the version the finding names (its ``study_id`` and ``protocol_version``),
    quoting that protocol package's registry criteria; the term and evidence when it is unknown."""
    study, version = str(finding.get("study_id", "")), str(finding.get("protocol_version", ""))
    protocol, criteria = _version(study, version)
    return explain(finding, protocol, criteria, events)


@functools.lru_cache(maxsize=64)  # bounded: a hostile finding may name any study or version
def _version(study_id: str, version: str) -> tuple[Protocol | None, tuple[Criterion, ...]]:
    try:
        protocol = versions_for(study_id).version(version)
    except (ProtocolLookupError, KeyError):
        return None, ()
    try:
        return protocol, kit_of(protocol).criteria
    except KitError:
        return protocol, ()


def _lower(text: str) -> str:
    """``Kidney transplant: yes`` → ``kidney transplant: yes``; an abbreviation (``CRS``, ``eGFR``) stays."""
    return text[:1].lower() + text[1:] if text[1:2].islower() else text


def _rule(protocol: Protocol | None, rule_id: str) -> RuleSpec | None:
    if protocol is None:
        return None
    try:
        return protocol.rule(rule_id)
    except KeyError:  # a rule id this version does not define (a foreign or hostile finding)
        return None


def _sentence(said: str, clause: str, criteria: Sequence[Criterion]) -> str:
    """``said``, then the clause it breaks, quoting the record's words when it has them."""
    quoted = next((c.text for c in criteria if c.reference == clause), None)
    where = f"{clause}: \u201c{quoted}\u201d" if quoted else clause
    said = said[:1].upper() + said[1:]
    return f"{said} \u2014 {where}." if where else f"{said}."


def _truth(node: Any, evidence: Mapping[str, Any]) -> bool | None:
    """Whether the condition holds on the evidence: None when it quotes too little to tell."""
    if not isinstance(node, dict) or len(node) != 1:
        return None
    ((key, value),) = node.items()
    if key in ("$and", "$or") and isinstance(value, list):
        truths = [_truth(child, evidence) for child in value]
        if key == "$and":
            return False if False in truths else (True if all(t is True for t in truths) else None)
        return True if True in truths else (False if all(t is False for t in truths) else None)
    leaf = _leaf(node)
    if leaf is None:
        return None
    if leaf.fact == "event_type":
        return True
    if leaf.fact not in evidence or (leaf.other is not None and leaf.other not in evidence):
        return None
    return _holds(leaf, evidence[leaf.fact], evidence.get(leaf.other) if leaf.other else leaf.constant)


def _holds(leaf: _Leaf, seen: Any, limit: Any) -> bool | None:
    if leaf.op == "$ex":
        return seen is not None
    if leaf.op == "$nex":
        return seen is None
    if leaf.op == "=":
        return bool(seen == limit)
    if leaf.op == "$neq":
        return bool(seen != limit)
    compare = _COMPARISONS.get(leaf.op)
    if compare is None:
        return None
    try:
        return bool(compare(seen, limit))
    except TypeError:  # a number against a text: the evidence cannot say
        return None


def _leaf(node: dict[str, Any]) -> _Leaf | None:
    ((key, value),) = node.items()
    if key in ("$ex", "$nex") and isinstance(value, dict) and len(value) == 1:
        return _Leaf(key, next(iter(value)), None)
    if key in _LIMIT_WORDS and isinstance(value, dict) and len(value) == 1:
        ((fact, constant),) = value.items()
        if isinstance(constant, dict) and "$m" in constant:
            return _Leaf(key, fact, None, str(constant["$m"]))
        return _Leaf(key, fact, constant)
    if not key.startswith("$"):
        if isinstance(value, dict) and "$m" in value:
            return _Leaf("=", key, None, str(value["$m"]))
        return _Leaf("=", key, value)
    return None


def _reasons(node: Any, evidence: Mapping[str, Any], *, must_hold: bool) -> list[_Leaf]:
    """The comparisons that made ``node`` hold (``must_hold``: it is known to have held)."""
    if not isinstance(node, dict) or len(node) != 1:
        return []
    ((key, value),) = node.items()
    truth = _truth(node, evidence)
    if key in ("$and", "$or") and isinstance(value, list):
        if key == "$and":
            if truth is True or (must_hold and truth is None):
                return [leaf for child in value for leaf in _reasons(child, evidence, must_hold=True)]
            return []
        held = [child for child in value if _truth(child, evidence) is True]
        if not held and must_hold:
            unknown = [child for child in value if _truth(child, evidence) is None]
            held = unknown if len(unknown) == 1 else []
        return [leaf for child in held for leaf in _reasons(child, evidence, must_hold=True)]
    leaf = _leaf(node)
    if leaf is None or leaf.fact == "event_type":
        return []
    return [leaf] if truth is True or (must_hold and truth is None) else []


def _facts(node: Any) -> set[str]:
    """Every fact a condition names."""
    if not isinstance(node, dict) or len(node) != 1:
        return set()
    ((key, value),) = node.items()
    if key in ("$and", "$or") and isinstance(value, list):
        return set().union(*(_facts(child) for child in value))
    leaf = _leaf(node)
    return set() if leaf is None else {leaf.fact} | ({leaf.other} if leaf.other else set())


def _parameter_for(leaf: _Leaf, parameters: Sequence[Parameter]) -> Parameter | None:
    """The parameter whose value the limit is (preferring one named like the fact), or one named like it."""
    words = set(leaf.fact.split("_")) - _GENERIC_WORDS
    if isinstance(leaf.constant, int | float) and not isinstance(leaf.constant, bool):
        by_value = [p for p in parameters if _same(p.value, leaf.constant)]
        if by_value:
            # Several limits may share a value (3.0 ×10⁹/L and 3.0 × ULN): the one named like the
            # fact, or whose source names it (ALT in "ALT and AST"), bounding the same way, wins.
            side = "max" if leaf.op in ("$gt", "$gte") else "min"
            return max(
                by_value,
                key=lambda p: (
                    bool(words & set(p.name.split("_"))),
                    any(re.search(rf"\b{re.escape(w)}\b", p.source, re.IGNORECASE) for w in words),
                    side in p.name.split("_"),
                ),
            )
    named = [p for p in parameters if words & (set(p.name.split("_")) - _GENERIC_WORDS)]
    return named[0] if named else None


def _same(value: Any, constant: Any) -> bool:
    values = value if isinstance(value, tuple) else (value,)
    return any(json.dumps(v) == json.dumps(constant) for v in values if not isinstance(v, bool))


def _clause(parameter: Parameter | None, rule: RuleSpec, criteria: Sequence[Criterion]) -> str:
    """The clause a comparison enforces: its parameter's source clause when the record has it, else the rule's."""
    if parameter is not None:
        clause = parameter.source.split(":")[0].strip()
        if any(c.reference == clause and rule.rule_id in c.rules for c in criteria):
            return clause
    return rule.reference


def _leaf_words(leaf: _Leaf, evidence: Mapping[str, Any], parameter: Parameter | None, source: Source | None) -> str:
    name = label(leaf.fact)
    unit = parameter.unit if parameter is not None else ""
    known = leaf.fact in evidence
    seen = evidence.get(leaf.fact)
    on = f" on {source.occurred_at[:10]}" if source is not None else ""
    if leaf.op in ("$ex", "$nex"):
        if leaf.op == "$nex":
            return f"{name}: not recorded"
        return f"{name}: {value_text(seen)}" if known else f"{name} recorded"
    if leaf.other is not None:
        other = label(leaf.other)
        if known and leaf.other in evidence:
            words = _LIMIT_WORDS.get(leaf.op, "is")
            return f"{name} {value_text(seen)}{on} {words.split(' the ')[0]} {other} {value_text(evidence[leaf.other])}"
        return f"{name} {_IMPLIED_WORDS.get(leaf.op, 'is')} {other}"
    if leaf.op == "=":
        shown = seen if known else leaf.constant
        return f"{name}: {value_text(shown)}"
    limit = with_unit(leaf.constant, unit)
    if not known:
        return f"{name} {_IMPLIED_WORDS.get(leaf.op, 'is not')} {limit}"
    return f"{name} {with_unit(seen, unit)}{on} {_LIMIT_WORDS[leaf.op]} {limit}"


def _lab_source(fact: str, occurred_at: str, events: Events) -> Source | None:
    """The screening lab result that carried a fact's value: the latest of its analyte at or before the finding."""
    loincs = _loincs_for(fact)
    if not loincs:
        return None
    try:
        before = dt.datetime.fromisoformat(occurred_at)
    except ValueError:
        return None
    found, found_at = None, None
    for event in events():
        payload = event.get("payload") or {}
        if event.get("event_type") != LAB_EVENT or payload.get("loinc") not in loincs:
            continue
        try:
            at = dt.datetime.fromisoformat(str(event.get("occurred_at", "")))
        except ValueError:
            continue
        if at <= before and (found_at is None or at >= found_at):  # the later in the log among equal times
            found, found_at = event, at
    if found is None:
        return None
    return Source(fact, str(found.get("event_id", "")), LAB_EVENT, str(found.get("occurred_at", "")))


def _loincs_for(fact: str) -> frozenset[str]:
    """The LOINC codes of the analyte a fact is read from: ``alt_uln_multiple`` → ALT's codes."""
    head = fact.split("_")[0]
    names = {fact, head, _ANALYTE_ALIASES.get(head, "")} - {""}
    return frozenset(code for a in ANALYTES if a.name in names for code in a.loincs)
