"""The edit-check specification a clinical team signs off: every rule of a protocol version, its
clause, its condition in words (generated from the declaration), its parameters and the scenarios
that demonstrate it, with whether they pass; then the registry criteria not encoded and why.

HTML (self-contained, print CSS, every value escaped by Jinja2's autoescape) or Markdown.
"""

from __future__ import annotations

import datetime as dt
import html
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined

import protocol as protocol_package
from events.scenarios import Outcome
from protocol.criteria import Criterion
from protocol.fingerprint import fingerprint
from protocol.model import Protocol
from protocol.versions import Version
from protocol.wording import condition_words
from services.presentation.explanation import explain


@dataclass(frozen=True)
class Demonstration:
    """A scenario that shows a rule: raising it, or (boundary) not."""

    name: str
    where: str
    raises: bool
    passed: bool


def spec_context(version: Version, criteria: Sequence[Criterion], outcomes: Sequence[Outcome]) -> dict[str, Any]:
    """What the document shows, as plain values."""
    protocol = version.protocol
    rules = []
    for rule in protocol.rules:
        clauses = [c for c in criteria if rule.rule_id in c.rules]
        shows = []
        for o in outcomes:
            s = o.scenario
            if rule.rule_id in s.raises() or any(rule.rule_id in e.rules for e in s.expectations):
                shows.append(Demonstration(s.name, _where(s.path, s.line), True, o.passed))
            elif s.boundary and rule.rule_id in s.proves_not_raised():
                shows.append(Demonstration(s.name, _where(s.path, s.line), False, o.passed))
        example = next((f for o in outcomes for f in o.findings if f.rule_id == rule.rule_id), None)
        rules.append(
            {
                "rule": rule,
                # What a finding of it says, in the words the dashboard, API and exports use.
                "explained": "" if example is None else explain(_json(example), protocol, criteria).text,
                "clauses": clauses,
                "condition": condition_words(rule, protocol),
                "parameters": protocol.parameters_of(rule.rule_id),
                "scenarios": shows,
            }
        )
    return {
        "protocol": protocol,
        "effective": _effective(version),
        "fingerprint": fingerprint(protocol),
        "rules": rules,
        "not_encoded": [c for c in criteria if c.not_encoded is not None],
        "partial": [c for c in criteria if c.rules and c.note],
        "fact_sources": [(s.name, (s.declared.__doc__ or "").strip().split("\n")[0]) for s in protocol.fact_sources],
        "scenarios_run": len(outcomes),
        "scenarios_failed": sum(1 for o in outcomes if not o.passed),
    }


def _json(finding: Any) -> dict[str, Any]:
    """A finding as its wire encoding reads back."""
    return dict(json.loads(finding.model_dump_json()))


_ROOT = Path(protocol_package.__file__ or ".").resolve().parents[1]


def _where(path: str, line: int) -> str:
    """``path:line`` from the folder that holds the ``protocol`` package (the repository, installed or not)."""
    try:
        return f"{Path(path).resolve().relative_to(_ROOT)}:{line}"
    except ValueError:
        return f"{path}:{line}"


def _effective(version: Version) -> str:
    since = "from the beginning of the study" if version.effective is None else f"from {version.effective}"
    sites = "; ".join(f"at {site} from {date}" for site, date in version.at_sites)
    return f"{since}{'; ' + sites if sites else ''}"


def render_html(context: dict[str, Any], generated: dt.date) -> str:
    """The specification as one self-contained HTML page."""
    environment = Environment(
        loader=PackageLoader("services.protocol_kit", "templates"), autoescape=True, undefined=StrictUndefined
    )
    return environment.get_template("spec.html").render(**context, generated=generated.isoformat())


def _md(value: Any) -> str:
    """A value for a Markdown table cell: HTML-escaped, pipes and newlines neutralised."""
    return html.escape(str(value)).replace("|", "\\|").replace("\n", " ")


def render_markdown(context: dict[str, Any], generated: dt.date) -> str:
    """The specification as Markdown (every value escaped)."""
    p: Protocol = context["protocol"]
    head = f"{_md(p.study_id)} v{_md(p.version)}, effective {_md(context['effective'])}"
    head += f", fingerprint {context['fingerprint']}"
    out = [
        f"# Edit-check specification: {_md(p.study_id)} v{_md(p.version)}",
        "",
        f"_{head}_",
        "",
        f"{_md(p.title)}. {len(context['rules'])} rules; scenarios run: {context['scenarios_run']}, "
        f"failed: {context['scenarios_failed']}. Generated {generated.isoformat()}.",
        "",
        "Conditions are generated from each rule's declaration; the facts they name are derived by the "
        "protocol package's code: " + ", ".join(f"`{_md(name)}`" for name, _ in context["fact_sources"]) + ".",
    ]
    for entry in context["rules"]:
        rule = entry["rule"]
        out += ["", f"## {_md(rule.rule_id)}: {_md(rule.term)}", ""]
        kind = f"{rule.kind.value}" + (f", {rule.category.value}, {rule.severity.value}" if rule.category else "")
        out += [f"- Kind, category, severity: {_md(kind)}", f"- Enforces: {_md(rule.reference)}"]
        out += [f"  > {_md(c.reference)}: \u201c{_md(c.text)}\u201d" for c in entry["clauses"]]
        out += [f"- Condition: {_md(entry['condition'])}"]
        if entry["explained"]:
            out += [f"- A finding says: {_md(entry['explained'])}"]
        out.append("")
        if entry["parameters"]:
            out += ["| parameter | value | unit | source | ASSUMPTION |", "|---|---|---|---|---|"]
            out += [f"| {_md(q.name)} | {_md(q.value)} | {_md(q.unit)} | {_md(q.source)} | {_md(q.assumption or '')} |"
                    for q in entry["parameters"]]  # fmt: skip
            out.append("")
        for s in entry["scenarios"]:
            shows = "raises it" if s.raises else "boundary, does not raise it"
            out.append(f"- Scenario {_md(s.name)} ({shows}; {_md(s.where)}): {'passes' if s.passed else 'FAILS'}")
        if not entry["scenarios"]:
            out.append("- No scenario demonstrates it.")
    out += ["", "## Registry criteria not encoded", ""]
    out += [f"- {_md(c.reference)}: \u201c{_md(c.text)}\u201d. Not encoded: {_md(c.not_encoded)}. {_md(c.note)}"
            for c in context["not_encoded"]]  # fmt: skip
    out += ["", "## Criteria encoded in part", ""]
    out += [f"- {_md(c.reference)} ({_md(', '.join(c.rules))}): {_md(c.note)}" for c in context["partial"]]
    return "\n".join(out) + "\n"
