"""FHIR R4 Observations in, contract-v1 ``ScreeningLabResulted`` events out. Pure: no I/O, no clock.

A lab posts one ``Observation`` or a ``Bundle`` (batch or transaction) of them. Each is parsed
with ``fhir.resources.R4B`` (FHIR R4's Observation is unchanged in R4B) and mapped field by
field; every event is then validated by the wire contract itself, so the gateway can never
publish what the rules service would dead-letter. The request is all or nothing: one bad entry
and nothing is published, and the ``OperationOutcome`` names that entry by its FHIRPath.

Statuses: ``final`` and ``amended`` publish; ``preliminary`` and ``registered`` are held (not
published, reported); ``corrected`` and ``entered-in-error`` need retraction events the contract
does not have yet, so they are a "not supported yet" problem rather than a silent republish.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.operationoutcome import OperationOutcome
from pydantic import ValidationError

from contracts import ContractError, parse_event
from contracts import units as unit_table
from contracts.limits import clip, printable
from contracts.participant_events import LabResultCorrected, LabResultRetracted, ScreeningLabResulted
from services.gateway.fhir_values import Problem, _quote, _range, _value

LOINC_SYSTEM = "http://loinc.org"
MAX_BUNDLE_ENTRIES = 1_000
"""A screening panel is a few dozen results; more in one request is not a lab report."""

GATEWAY_NAMESPACE = uuid.UUID("5f3a8c2e-7d41-5b7e-9c1a-2b6e4f0d9a13")
"""The uuid5 namespace of every event id the lab gateway derives (FHIR and HL7 v2)."""

PUBLISHED_STATUSES = frozenset({"final", "amended"})
HELD_STATUSES = frozenset({"preliminary", "registered"})
CORRECTED, RETRACTED = "corrected", "entered-in-error"
ORIGINAL_STATUS = "final"
"""The status of the result a correction or retraction names: its event id is the one the gateway
gave the final result of the same Observation identifier (a correction of an amended result is
reported against the final one it amended)."""


# Contract field → where it came from in an Observation, to name a ContractError in FHIR terms.
_CONTRACT_PATHS = {
    "participant_id": "subject.identifier.value",
    "occurred_at": "effective",
    "recorded_at": "issued",
    "payload.loinc": "code.coding",
    "payload.unit": "valueQuantity.code",
    "payload.uln": "referenceRange[0].high.value",
    "payload.lln": "referenceRange[0].low.value",
}
_VALUE_ELEMENTS = ("valueQuantity", "valueString", "valueCodeableConcept", "valueRatio")


LabEvent = ScreeningLabResulted | LabResultCorrected | LabResultRetracted
"""What an Observation becomes: a result, a correction of one, or its retraction."""


@dataclass(frozen=True)
class SourceInfo:
    """The upstream system a request or message came from, as the gateway's source store knows it
    (``services.gateway.sources.Source`` has the same two fields).

    Attributes:
        name: the source's registered name: the events' ``source.system``, and part of every event
            id it produces (two sources never share ids).
        site: the trial site its results belong to: the events' ``site_id``.
    """

    name: str
    site: str


@dataclass(frozen=True)
class Held:
    """An Observation accepted but not published because its result is not final yet."""

    expression: str
    status: str


@dataclass(frozen=True)
class FhirResult:
    """The outcome of one request: events to publish (only when there is no problem), held
    Observations, and problems."""

    events: tuple[LabEvent, ...] = ()
    held: tuple[Held, ...] = ()
    problems: tuple[Problem, ...] = field(default=())

    @property
    def http_status(self) -> int:
        """400 when the input is not FHIR, 422 when it is but cannot be mapped, else 200."""
        if any(p.parse for p in self.problems):
            return 400
        return 422 if self.problems else 200

    def outcome(self) -> OperationOutcome:
        """The OperationOutcome to answer with: one issue per problem, or information issues."""
        issues: list[dict[str, Any]] = [
            # FHIR forbids an empty string: a problem of the whole body has no expression.
            {"severity": "error", "code": p.code, "diagnostics": p.diagnostics}
            | ({"expression": [p.expression]} if p.expression else {})
            for p in self.problems
        ]
        if not issues:
            issues = [
                {
                    "severity": "information",
                    "code": "informational",
                    "diagnostics": f"status {h.status!r}: held, not published until final",
                    "expression": [h.expression],
                }
                for h in self.held
            ] or [
                {
                    "severity": "information",
                    "code": "informational",
                    "diagnostics": f"{len(self.events)} result(s) accepted",
                }
            ]
        return OperationOutcome(issue=issues)


def observations_to_events(
    payload: dict[str, Any], source: SourceInfo, study_id: str, identifier_system: str
) -> FhirResult:
    """Map a FHIR R4 Observation, or a batch/transaction Bundle of them, to contract events.

    Args:
        payload: the decoded JSON body of the request.
        source: the source the request came from (site, system, name for event ids).
        study_id: the study the events belong to.
        identifier_system: the identifier system whose value in ``Observation.subject.identifier``
            is the participant id.

    Returns:
        The events (empty when there is any problem: a request is all or nothing), the held
        Observations and the problems, each problem named by FHIRPath.
    """
    kind = payload.get("resourceType") if isinstance(payload, dict) else None
    if kind == "Observation":
        located = [("Observation", payload)]
    elif kind == "Bundle":
        entries = _bundle_entries(payload)
        if isinstance(entries, Problem):
            return FhirResult(problems=(entries,))
        located = entries
    else:
        got = "not a JSON object" if not isinstance(payload, dict) else f"resourceType {_quote(kind)}"
        problem = Problem("resourceType", f"expected an Observation or a Bundle, got {got}", "structure", parse=True)
        return FhirResult(problems=(problem,))

    events: list[LabEvent] = []
    held: list[Held] = []
    problems: list[Problem] = []
    for path, resource in located:
        outcome = _one(path, resource, source, study_id, identifier_system)
        if isinstance(outcome, ScreeningLabResulted | LabResultCorrected | LabResultRetracted):
            events.append(outcome)
        elif isinstance(outcome, Held):
            held.append(outcome)
        else:
            problems += outcome
    if problems:
        return FhirResult(held=tuple(held), problems=tuple(problems))
    return FhirResult(events=tuple(events), held=tuple(held))


def _bundle_entries(payload: dict[str, Any]) -> list[tuple[str, Any]] | Problem:
    entries = payload.get("entry", [])
    try:
        # The shell only: entries are parsed one by one so that a problem names its entry.
        bundle = Bundle.model_validate({**payload, "entry": []})
    except ValidationError as e:
        return _parse_problems("Bundle", e)[0]
    if bundle.type not in ("batch", "transaction"):
        return Problem("Bundle.type", f"Bundle type {_quote(bundle.type)}: expected batch or transaction", "value")
    if not isinstance(entries, list) or not entries:
        return Problem(
            "Bundle.entry", "a Bundle needs at least one entry", "required", parse=not isinstance(entries, list)
        )
    if len(entries) > MAX_BUNDLE_ENTRIES:
        return Problem("Bundle.entry", f"{len(entries):,} entries; at most {MAX_BUNDLE_ENTRIES:,}", "too-costly")
    return [
        (f"Bundle.entry[{i}].resource", e.get("resource") if isinstance(e, dict) else None)
        for i, e in enumerate(entries)
    ]


def _one(
    path: str, resource: Any, source: SourceInfo, study_id: str, identifier_system: str
) -> LabEvent | Held | list[Problem]:
    if not isinstance(resource, dict) or resource.get("resourceType") != "Observation":
        kind = resource.get("resourceType") if isinstance(resource, dict) else None
        return [Problem(path, f"expected an Observation, got {_quote(kind)}", "not-supported")]
    try:
        obs = Observation.model_validate(resource)
    except ValidationError as e:
        return _parse_problems(path, e)
    status = str(obs.status)
    if status in HELD_STATUSES:
        return Held(path, status)
    if status == RETRACTED:
        return _retraction(obs, path, source, study_id, identifier_system)
    if status not in PUBLISHED_STATUSES | {CORRECTED}:
        return [Problem(f"{path}.status", f"status {status!r} carries no result to publish", "not-supported")]
    problems: list[Problem] = []
    loinc = _loinc(obs, path, problems)
    participant = _participant(obs, path, identifier_system, problems)
    key = _business_key(obs, path, problems)
    value, unit = _value(obs, path, loinc, problems)
    uln, lln = _range(obs, path, unit, problems)
    occurred = _effective(obs, path, problems)
    if obs.issued is None:
        problems.append(
            Problem(f"{path}.issued", "missing: the time the lab issued the result (recorded_at)", "required")
        )
    if problems:
        return problems
    payload: dict[str, Any] = {"loinc": loinc, "value": value}
    payload |= {k: v for k, v in (("unit", unit), ("uln", uln), ("lln", lln)) if v is not None}
    event_type, event_key = "ScreeningLabResulted", f"fhir|{source.name}|{key}|{status}"
    if status == CORRECTED:
        # A correction names the final result it replaces; its own id depends on the new value,
        # so a second, different correction of the same result is an event of its own.
        event_type = "LabResultCorrected"
        payload = {k: v for k, v in payload.items() if k in ("value", "unit", "uln")}
        payload["corrected_event_id"] = _original_id(source, key)
        event_key += f"|{json.dumps(payload, sort_keys=True)}"
    event = {
        "event_id": str(uuid.uuid5(GATEWAY_NAMESPACE, event_key)),
        "event_type": event_type,
        "schema_version": 1,
        "study_id": study_id,
        "site_id": source.site,
        "participant_id": participant,
        "occurred_at": _instant(occurred),
        "recorded_at": _instant(obs.issued),
        "source": {"system": source.name},
        "payload": payload,
    }
    try:
        parsed = parse_event(json.dumps(event))
    except ContractError as e:
        value_element = next(n for n in _VALUE_ELEMENTS if getattr(obs, n) is not None)
        fields = _CONTRACT_PATHS | {"payload.value": value_element}
        return [
            Problem(f"{path}.{fields[v.field]}" if v.field in fields else path, str(v), "invariant")
            for v in e.violations
        ]
    assert isinstance(parsed, ScreeningLabResulted | LabResultCorrected)
    return parsed


def _original_id(source: SourceInfo, key: str | None) -> str:
    return str(uuid.uuid5(GATEWAY_NAMESPACE, f"fhir|{source.name}|{key}|{ORIGINAL_STATUS}"))


def _retraction(
    obs: Observation, path: str, source: SourceInfo, study_id: str, identifier_system: str
) -> LabResultRetracted | list[Problem]:
    """``entered-in-error``: the final result of the same identifier is retracted."""
    problems: list[Problem] = []
    participant = _participant(obs, path, identifier_system, problems)
    key = _business_key(obs, path, problems)
    occurred = _effective(obs, path, problems)
    if problems:
        return problems
    recorded = obs.issued if obs.issued is not None else occurred
    event = {
        "event_id": str(uuid.uuid5(GATEWAY_NAMESPACE, f"fhir|{source.name}|{key}|{RETRACTED}")),
        "event_type": "LabResultRetracted",
        "schema_version": 1,
        "study_id": study_id,
        "site_id": source.site,
        "participant_id": participant,
        "occurred_at": _instant(occurred),
        "recorded_at": _instant(recorded),
        "source": {"system": source.name},
        "payload": {"retracted_event_id": _original_id(source, key)},
    }
    try:
        parsed = parse_event(json.dumps(event))
    except ContractError as e:
        return [Problem(path, str(v), "invariant") for v in e.violations]
    assert isinstance(parsed, LabResultRetracted)
    return parsed


def _loinc(obs: Observation, path: str, problems: list[Problem]) -> str | None:
    codes = [c.code for c in obs.code.coding or [] if c.system == LOINC_SYSTEM and c.code]
    if not codes:
        problems.append(Problem(f"{path}.code.coding", f"no coding of system {LOINC_SYSTEM}", "required"))
        return None
    # A lab may send the LOINC code next to its own; one of them must be a screening analyte.
    known = [c for c in codes if unit_table.analyte_for(c) is not None]
    if not known:
        said = ", ".join(codes)
        problems.append(
            Problem(f"{path}.code.coding", f"LOINC {said} is not a screening lab of the study", "code-invalid")
        )
        return None
    return known[0]


def _participant(obs: Observation, path: str, system: str, problems: list[Problem]) -> str | None:
    identifier = obs.subject.identifier if obs.subject is not None else None
    if identifier is None or identifier.system != system or not identifier.value:
        problems.append(
            Problem(f"{path}.subject.identifier", f"the subject needs an identifier of system {system}", "required")
        )
        return None
    return identifier.value


def _business_key(obs: Observation, path: str, problems: list[Problem]) -> str | None:
    # The business identifier survives a resend from another server; the id is the fallback.
    for ident in obs.identifier or []:
        if ident.value:
            return f"identifier|{ident.system or ''}|{ident.value}"
    if obs.id:
        return f"id|{obs.id}"
    problems.append(Problem(f"{path}.identifier", "an Observation needs an identifier or an id", "required"))
    return None


def _effective(obs: Observation, path: str, problems: list[Problem]) -> Any:
    when = obs.effectiveDateTime or obs.effectiveInstant
    # A date alone has no time and no offset; the contract's occurred_at needs both.
    if not isinstance(when, dt.datetime):
        what = "a date without a time" if when is not None else "missing"
        problems.append(Problem(f"{path}.effectiveDateTime", f"{what}: a time with an offset is needed", "required"))
        return None
    return when


def _instant(value: Any) -> str | None:
    return value.isoformat() if isinstance(value, dt.datetime) else None


def _parse_problems(root: str, error: ValidationError) -> list[Problem]:
    problems = []
    for detail in error.errors(include_url=False)[:20]:
        where = root + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in detail["loc"])
        problems.append(Problem(where, printable(clip(str(detail["msg"]), 300)), "structure", parse=True))
    return problems
