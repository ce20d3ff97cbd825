"""FHIR R4 Observations in, contract-v1 ``ScreeningLabResulted`` events out. Pure: no I/O, no clock.

A lab posts one ``Observation``, a ``DiagnosticReport`` with its results, or a ``Bundle`` of
them (services/gateway/fhir_bundle.py). Each is parsed with ``fhir.resources.R4B`` (FHIR R4's
Observation is unchanged in R4B) and mapped field by field; every event is then validated by the
wire contract itself, so the gateway can never publish what the rules service would dead-letter.

A result whose LOINC code the study does not use (the platelets of a blood count) is left out and
told as information, "not used by the study"; a source registered ``--strict`` has the whole
request refused instead. What the study uses is all or nothing: one bad result and nothing is
published, and the ``OperationOutcome`` names that entry by its FHIRPath.

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

from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.operationoutcome import OperationOutcome
from pydantic import ValidationError

from contracts import ContractError, parse_event
from contracts import units as unit_table
from contracts.limits import clip, printable
from contracts.participant_events import LabResult, LabResultCorrected, LabResultRetracted, ScreeningLabResulted
from services.gateway.fhir_bundle import MAX_BUNDLE_ENTRIES, Collected, Note, collect
from services.gateway.fhir_times import occurred_at, recorded_at
from services.gateway.fhir_values import Problem, _quote, _range, _value

LOINC_SYSTEM = "http://loinc.org"
__all__ = ["MAX_BUNDLE_ENTRIES", "FhirResult", "Held", "SourceInfo", "observations_to_events"]

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
    "occurred_at": "effective[x]",
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
        time_zone: the IANA zone its date-only times are read in (None: they are refused).
        strict: refuse a whole request carrying a result the study does not use (else it is
            left out and told as not used).
    """

    name: str
    site: str
    time_zone: str | None = None
    strict: bool = False


@dataclass(frozen=True)
class Held:
    """An Observation accepted but not published because its result is not final yet."""

    expression: str
    status: str


@dataclass(frozen=True)
class FhirResult:
    """The outcome of one request: events to publish (only when there is no problem), held
    Observations, problems, results not used by the study and notes on what else it carried."""

    events: tuple[LabEvent, ...] = ()
    held: tuple[Held, ...] = ()
    problems: tuple[Problem, ...] = field(default=())
    not_used: tuple[Note, ...] = ()
    notes: tuple[Note, ...] = ()

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
            issues = [_information(f"{len(self.events)} result(s) accepted")]
            issues += [
                _information(f"status {h.status!r}: held, not published until final", h.expression) for h in self.held
            ]
            issues += [_information(n.diagnostics, n.expression) for n in self.not_used + self.notes]
        return OperationOutcome(issue=issues)


def _information(diagnostics: str, expression: str | None = None) -> dict[str, Any]:
    issue = {"severity": "information", "code": "informational", "diagnostics": diagnostics}
    return issue | ({"expression": [expression]} if expression else {})


@dataclass(frozen=True)
class _Reading:
    """How one request is read: its source, study, participant identifiers and receipt time."""

    source: SourceInfo
    study_id: str
    identifier_system: str
    patient_reference: bool
    received_at: dt.datetime | None
    found: Collected


def observations_to_events(
    payload: dict[str, Any],
    source: SourceInfo,
    study_id: str,
    identifier_system: str,
    *,
    received_at: dt.datetime | None = None,
    patient_reference: bool = False,
) -> FhirResult:
    """Map a FHIR R4 Observation, DiagnosticReport or Bundle to contract events.

    Args:
        payload: the decoded JSON body of the request.
        source: the source the request came from (site, system, name for event ids).
        study_id: the study the events belong to.
        identifier_system: the identifier system whose value in ``Observation.subject.identifier``
            (or in the identifiers of the Patient it references in the request) is the
            participant id.
        received_at: when the gateway received the request: ``recorded_at`` of a result without
            ``issued``; None refuses such a result.
        patient_reference: also take the participant id from ``subject.reference``
            ``Patient/<id>`` (a deployment whose lab uses the study's ids as Patient ids).

    Returns:
        The events (empty when there is any problem: a request is all or nothing), the held
        Observations and the problems, each problem named by FHIRPath.
    """
    if not isinstance(payload, dict):
        return FhirResult(problems=(Problem("resourceType", "expected a JSON object", "structure", parse=True),))
    found = collect(payload, _parse_problems)
    if isinstance(found, list):
        return FhirResult(problems=tuple(found))
    reading = _Reading(source, study_id, identifier_system, patient_reference, received_at, found)
    events: list[LabEvent] = []
    held: list[Held] = []
    problems: list[Problem] = []
    not_used: list[Note] = []
    for located in found.observations:
        outcome = _one(located.path, located.resource, reading)
        if isinstance(outcome, ScreeningLabResulted | LabResultCorrected | LabResultRetracted):
            events.append(outcome)
        elif isinstance(outcome, Held):
            held.append(outcome)
        elif isinstance(outcome, Note):
            not_used.append(outcome)
        else:
            problems += outcome
    if problems:
        return FhirResult(held=tuple(held), problems=tuple(problems))
    return FhirResult(tuple(events), tuple(held), (), tuple(not_used), tuple(found.notes))


def _one(path: str, resource: Any, reading: _Reading) -> LabEvent | Held | Note | list[Problem]:
    source = reading.source
    try:
        obs = Observation.model_validate(resource)
    except ValidationError as e:
        return _parse_problems(path, e)
    problems: list[Problem] = []
    loinc = _loinc(obs, path, problems)
    if loinc is None:
        if source.strict:
            return problems
        return Note(f"{path}.code", f"{_code_said(obs)}: not used by the study")
    status = str(obs.status)
    if status in HELD_STATUSES:
        return Held(path, status)
    if status == RETRACTED:
        return _retraction(obs, path, reading)
    if status not in PUBLISHED_STATUSES | {CORRECTED}:
        return [Problem(f"{path}.status", f"status {status!r} carries no result to publish", "not-supported")]
    participant = _participant(obs, path, reading, problems)
    key = _business_key(obs, path, problems)
    value, unit = _value(obs, path, loinc, problems)
    uln, lln = _range(obs, path, unit, problems)
    occurred = occurred_at(obs, path, source.time_zone, problems)
    recorded, from_receipt = recorded_at(obs, reading.received_at)
    if recorded is None:
        problems.append(
            Problem(f"{path}.issued", "missing: the time the lab issued the result (recorded_at)", "required")
        )
    comparator = obs.valueQuantity.comparator if obs.valueQuantity is not None else None
    if comparator is not None and "comparator" not in LabResult.model_fields:
        # Carried as soon as the contract's lab result has a comparator (below); until then a
        # "<0.5" is not published as if it were 0.5.
        problems.append(
            Problem(
                f"{path}.valueQuantity.comparator",
                f"a result {comparator} a value cannot be carried by the contract yet",
                "not-supported",
            )
        )
    if problems:
        return problems
    payload: dict[str, Any] = {"loinc": loinc, "value": value}
    payload |= {k: v for k, v in (("unit", unit), ("uln", uln), ("lln", lln)) if v is not None}
    if comparator is not None:
        payload["comparator"] = comparator
    event_type, event_key = "ScreeningLabResulted", f"fhir|{source.name}|{key}|{status}"
    study_id = reading.study_id
    if status == CORRECTED:
        # A correction names the final result it replaces; its own id depends on the new value,
        # so a second, different correction of the same result is an event of its own.
        event_type = "LabResultCorrected"
        payload = {k: v for k, v in payload.items() if k in ("value", "unit", "uln", "comparator")}
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
        "recorded_at": _instant(recorded),
        "source": {"system": source.name} | ({"recorded_at_from": "receipt"} if from_receipt else {}),
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


def _retraction(obs: Observation, path: str, reading: _Reading) -> LabResultRetracted | list[Problem]:
    """``entered-in-error``: the final result of the same identifier is retracted."""
    source, study_id = reading.source, reading.study_id
    problems: list[Problem] = []
    participant = _participant(obs, path, reading, problems)
    key = _business_key(obs, path, problems)
    occurred = occurred_at(obs, path, source.time_zone, problems)
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
        problems.append(Problem(f"{path}.code.coding", f"LOINC {said} is not a lab the study uses", "code-invalid"))
        return None
    return known[0]


def _code_said(obs: Observation) -> str:
    """How a result not used by the study is named in its note: its LOINC codes, else its code."""
    codes = [str(c.code) for c in obs.code.coding or [] if c.system == LOINC_SYSTEM and c.code]
    if codes:
        return "LOINC " + ", ".join(codes)
    other = [f"{c.system or ''}|{c.code}" for c in obs.code.coding or [] if c.code] or [obs.code.text or "no code"]
    return f"{_quote(other[0])} (no LOINC code)"


def _participant(obs: Observation, path: str, reading: _Reading, problems: list[Problem]) -> str | None:
    """The participant id: the subject's identifier of the study's system, else that identifier of
    the Patient the subject references in the request, else (when the deployment says so) the id
    of ``Patient/<id>``."""
    system = reading.identifier_system
    subject = obs.subject
    ident = subject.identifier if subject is not None else None
    if ident is not None and ident.system == system and ident.value:
        return str(ident.value)
    reference = str(subject.reference) if subject is not None and subject.reference else None
    if reference is not None and (patient := reading.found.patients.get(reference)) is not None:
        for ident in patient.get("identifier") or []:
            if isinstance(ident, dict) and ident.get("system") == system and ident.get("value"):
                return str(ident["value"])
    if reading.patient_reference and reference is not None and reference.startswith("Patient/"):
        return reference.removeprefix("Patient/")
    how = " (or Patient/<id>)" if reading.patient_reference else ""
    problems.append(
        Problem(
            f"{path}.subject",
            f"the subject needs an identifier of system {system}, itself or on the Patient it references{how}",
            "required",
        )
    )
    return None


def _business_key(obs: Observation, path: str, problems: list[Problem]) -> str | None:
    # The business identifier survives a resend from another server; the id is the fallback.
    for ident in obs.identifier or []:
        if ident.value:
            return f"identifier|{ident.system or ''}|{ident.value}"
    if obs.id:
        return f"id|{obs.id}"
    problems.append(Problem(f"{path}.identifier", "an Observation needs an identifier or an id", "required"))
    return None


def _instant(value: Any) -> str | None:
    return value.isoformat() if isinstance(value, dt.datetime) else None


def _parse_problems(root: str, error: ValidationError) -> list[Problem]:
    problems = []
    for detail in error.errors(include_url=False)[:20]:
        where = root + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in detail["loc"])
        problems.append(Problem(where, printable(clip(str(detail["msg"]), 300)), "structure", parse=True))
    return problems
