"""Where the Observations of a FHIR request are: the request itself, the entries of a Bundle, or
the results of a DiagnosticReport (contained, or entries of the same Bundle). Pure.

Every Bundle type a lab or a server sends results in is read (batch, transaction, collection,
message, searchset); its entries that are neither an Observation nor a DiagnosticReport (the
Patient, the Encounter, a MessageHeader…) are ignored with a note. A DiagnosticReport's results
are read where they are: ``#id`` in its ``contained``, or an entry of the same Bundle (named by
``fullUrl`` or ``Type/id``), which is read once, as that entry. An Observation found through a
report inherits what it does not say itself from the report: its subject, ``effective[x]`` and
``issued`` (a report's contained results often say only their code and value).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fhir.resources.R4B.bundle import Bundle
from pydantic import ValidationError

from services.gateway.fhir_values import Problem, _quote

MAX_BUNDLE_ENTRIES = 1_000
"""A screening panel is a few dozen results; more in one request is not a lab report."""

BUNDLE_TYPES = ("batch", "transaction", "collection", "message", "searchset")
"""The Bundle types results come in; a document, history or a response is not a lab report."""

_INHERITED = ("subject", "effectiveDateTime", "effectivePeriod", "effectiveInstant", "issued")
"""What a result of a DiagnosticReport takes from the report when it does not say it itself."""


@dataclass(frozen=True)
class Located:
    """One Observation of the request: its FHIRPath and its JSON, with what it inherits."""

    path: str
    resource: Any


@dataclass(frozen=True)
class Note:
    """Something of the request that is read but not published, told as information."""

    expression: str
    diagnostics: str


@dataclass
class Collected:
    """The Observations of a request, the notes about what else it carried, and the Patients it
    carries (by every reference that names them), to find a subject's identifiers."""

    observations: list[Located] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)
    patients: dict[str, dict[str, Any]] = field(default_factory=dict)


def collect(payload: dict[str, Any], parse_problems: Any) -> Collected | list[Problem]:
    """The Observations of an Observation, a Bundle or a DiagnosticReport body.

    Args:
        payload: the decoded JSON object of the request.
        parse_problems: ``(root, ValidationError) -> list[Problem]``, how the caller names
            validation errors.

    Returns:
        What was found, or the problems that keep the request from being read at all.
    """
    kind = payload.get("resourceType")
    found = Collected()
    if kind == "Observation":
        found.observations.append(Located("Observation", payload))
    elif kind == "DiagnosticReport":
        problems = _report(payload, "DiagnosticReport", {}, found)
        if problems:
            return problems
    elif kind == "Bundle":
        return _bundle(payload, parse_problems, found)
    else:
        expected = "expected an Observation, a DiagnosticReport or a Bundle"
        return [Problem("resourceType", f"{expected}, got resourceType {_quote(kind)}", "structure", parse=True)]
    return found


def _bundle(payload: dict[str, Any], parse_problems: Any, found: Collected) -> Collected | list[Problem]:
    entries = payload.get("entry", [])
    try:
        # The shell only: entries are parsed one by one so that a problem names its entry.
        bundle = Bundle.model_validate({**payload, "entry": []})
    except ValidationError as e:
        return list(parse_problems("Bundle", e))[:1]
    if bundle.type not in BUNDLE_TYPES:
        said = ", ".join(BUNDLE_TYPES)
        return [Problem("Bundle.type", f"Bundle type {_quote(bundle.type)}: expected one of {said}", "value")]
    if not isinstance(entries, list) or not entries:
        parse = not isinstance(entries, list)
        return [Problem("Bundle.entry", "a Bundle needs at least one entry", "required", parse=parse)]
    if len(entries) > MAX_BUNDLE_ENTRIES:
        return [Problem("Bundle.entry", f"{len(entries):,} entries; at most {MAX_BUNDLE_ENTRIES:,}", "too-costly")]
    by_reference: dict[str, int] = {}
    resources = []
    for i, entry in enumerate(entries):
        resource = entry.get("resource") if isinstance(entry, dict) else None
        resources.append(resource)
        if not isinstance(resource, dict):
            continue
        for name in _names(entry, resource):
            by_reference[name] = i
        if resource.get("resourceType") == "Patient":
            found.patients |= dict.fromkeys(_names(entry, resource), resource)
    reports: list[tuple[int, dict[str, Any]]] = []
    for i, resource in enumerate(resources):
        path = f"Bundle.entry[{i}].resource"
        kind = resource.get("resourceType") if isinstance(resource, dict) else None
        if kind == "Observation":
            found.observations.append(Located(path, resource))
        elif kind == "DiagnosticReport":
            reports.append((i, resource))  # type: ignore[arg-type]
        elif resource is None and isinstance(entries[i], dict) and "request" in entries[i]:
            # A batch or transaction may carry requests without a resource (a GET, a DELETE).
            found.notes.append(Note(f"Bundle.entry[{i}]", "a request without a resource: ignored"))
        elif kind is None:
            return [Problem(path, "an entry needs a resource with a resourceType", "required", parse=True)]
        else:
            found.notes.append(Note(path, f"{_quote(kind)} is not a result: ignored"))
    for i, report in reports:
        problems = _report(report, f"Bundle.entry[{i}].resource", by_reference, found)
        if problems:
            return problems
    return found


def _names(entry: dict[str, Any], resource: dict[str, Any]) -> list[str]:
    """The references that name a Bundle entry: its fullUrl and ``Type/id``."""
    names = [str(entry["fullUrl"])] if entry.get("fullUrl") else []
    if resource.get("id"):
        names.append(f"{resource.get('resourceType')}/{resource['id']}")
    return names


def _report(report: dict[str, Any], path: str, entries: dict[str, int], found: Collected) -> list[Problem]:
    """The results of a DiagnosticReport: contained ones are read here, those that are entries of
    the Bundle are read as entries (and inherit the report's subject and times there)."""
    inherited = {k: report[k] for k in _INHERITED if k in report}
    resources = enumerate(report.get("contained") or [])
    contained = {f"#{r['id']}": (j, r) for j, r in resources if isinstance(r, dict) and r.get("id")}
    for name, (_, resource) in contained.items():
        if resource.get("resourceType") == "Patient":
            found.patients[name] = resource
    results = report.get("result") or []
    if not isinstance(results, list):
        return [Problem(f"{path}.result", "expected a list of references", "structure", parse=True)]
    for k, ref in enumerate(results):
        reference = ref.get("reference") if isinstance(ref, dict) else None
        where = f"{path}.result[{k}]"
        if reference in contained:
            j, observation = contained[str(reference)]
            found.observations.append(Located(f"{path}.contained[{j}]", _inherit(observation, inherited)))
        elif reference in entries:
            _inherit_entry(found, f"Bundle.entry[{entries[str(reference)]}].resource", inherited)
        else:
            return [
                Problem(
                    where,
                    f"result {_quote(reference)} is neither contained in the report nor an entry of the Bundle: "
                    "send the Observations with it",
                    "not-found",
                )
            ]
    if not results:
        found.notes.append(Note(path, "a DiagnosticReport without results: nothing to read"))
    return []


def _inherit(observation: dict[str, Any], inherited: dict[str, Any]) -> dict[str, Any]:
    has_effective = any(k.startswith("effective") for k in observation)
    taken = {k: v for k, v in inherited.items() if k not in observation}
    if has_effective:
        taken = {k: v for k, v in taken.items() if not k.startswith("effective")}
    return taken | observation


def _inherit_entry(found: Collected, path: str, inherited: dict[str, Any]) -> None:
    for i, located in enumerate(found.observations):
        if located.path == path:
            found.observations[i] = Located(path, _inherit(located.resource, inherited))
