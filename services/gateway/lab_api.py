"""Labs as they speak: FHIR R4 Observations (``POST /fhir/Observation``, ``POST /fhir`` with a
Bundle), HL7 v2 ORU^R01 (``POST /hl7v2``, and over MLLP through :func:`mllp_handler`).

Each request maps to contract-v1 events (services/gateway/fhir.py, hl7.py), goes through the same
admission as contract JSON (site and study of the source, registered participants) and is
published all or none before the answer: an ``OperationOutcome`` for FHIR, an ACK for HL7.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from contracts import ParticipantEvent
from services.gateway.admission import Problem, RejectedError
from services.gateway.auth import CurrentSource
from services.gateway.endpoints import read_body, unavailable
from services.gateway.fhir import FhirResult, SourceInfo, observations_to_events
from services.gateway.fhir_values import Problem as FhirProblem
from services.gateway.hl7 import Hl7Result, oru_to_events, sending_application
from services.gateway.hl7_ack import Hl7Error, ack
from services.gateway.hl7_wire import WireError, batch_ack, decode, split
from services.gateway.publisher import PublishError
from services.gateway.routing import admit_to_studies, mapping_study, route_by_participant
from services.gateway.sources import Source

log = structlog.get_logger("trialguard.gateway.labs")

router = APIRouter()

FHIR_JSON = "application/fhir+json"


def _outcome(result: FhirResult, status: int | None = None) -> JSONResponse:
    body = json.loads(result.outcome().model_dump_json(exclude_none=True))
    return JSONResponse(body, status_code=status or result.http_status, media_type=FHIR_JSON)


def _admission_problems(problems: list[Problem], entry: Callable[[int], str]) -> list[FhirProblem]:
    return [FhirProblem(f"{entry(p.position)}", f"{p.field}: {p.problem}", "business-rule") for p in problems]


MAX_FHIR_DEPTH = 64
"""The deepest nesting of objects and arrays in a FHIR body (a Bundle of Observations needs ~10)."""


def _not_fhir(why: str) -> FhirProblem:
    return FhirProblem("", f"the body is not a FHIR resource: {why}", "structure", parse=True)


def _fhir_resource(body: bytes) -> dict[str, Any] | FhirProblem:
    """The body as a JSON object nested at most ``MAX_FHIR_DEPTH`` deep, or the problem (a 400)."""
    try:
        text = body.decode("utf-8-sig")  # a byte-order mark is allowed, as json.loads allows it
    except UnicodeDecodeError as e:
        return _not_fhir(f"it is not UTF-8 (byte {e.start})")
    if _depth(text) > MAX_FHIR_DEPTH:
        return _not_fhir(f"it nests deeper than {MAX_FHIR_DEPTH} levels")
    try:
        payload: Any = json.loads(text)
    except json.JSONDecodeError as e:
        return _not_fhir(f"it is not JSON (line {e.lineno}, column {e.colno}: {e.msg})")
    except RecursionError:  # unreachable after _depth, kept so that no body can answer 500
        return _not_fhir(f"it nests deeper than {MAX_FHIR_DEPTH} levels")
    if not isinstance(payload, dict):
        kind = {list: "an array", str: "a string", bool: "a boolean"}.get(type(payload), "a number")
        return _not_fhir(f"it is {'null' if payload is None else kind}, not a JSON object")
    return payload


def _depth(text: str) -> int:
    """How deep brackets nest in JSON text, counted without parsing (brackets in strings too: an
    over-estimate is safe), so that a body nested a thousand deep never reaches the parser."""
    depth = deepest = 0
    for char in text:
        if char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


async def _fhir(request: Request, source: Source) -> Response:
    if (busy := unavailable(request)) is not None:
        return busy
    body = await read_body(request)
    if isinstance(body, JSONResponse):
        return body
    state = request.app.state
    settings = state.settings
    payload = _fhir_resource(body)
    if isinstance(payload, FhirProblem):
        state.metrics.rejections.labels(reason="fhir").inc()
        return _outcome(FhirResult((), (), (payload,)))
    try:
        result = observations_to_events(
            payload,
            SourceInfo(source.name, source.site, source.time_zone, source.strict),
            mapping_study(source, state.participants),
            settings.fhir_identifier_system,
            received_at=dt.datetime.now(dt.UTC),
            patient_reference=settings.fhir_patient_reference,
        )
    except RecursionError:
        return _outcome(FhirResult((), (), (_not_fhir(f"it nests deeper than {MAX_FHIR_DEPTH} levels"),)))
    if result.problems:
        state.metrics.rejections.labels(reason="fhir").inc()
        return _outcome(result)
    if result.not_used:
        state.metrics.results_not_used.labels(format="fhir").inc(len(result.not_used))
    return await _publish(
        request,
        list(result.events),
        source,
        lambda events: _outcome(result, 202 if events else 200),
        lambda problems: _outcome(
            FhirResult((), (), tuple(_admission_problems(problems, lambda i: f"event {i} (in Observation order)")))
        ),
    )


async def _publish(
    request: Request,
    events: list[ParticipantEvent],
    source: Source,
    done: Callable[[list[ParticipantEvent]], Response],
    refused: Callable[[list[Problem]], Response],
) -> Response:
    """Admit and publish ``events`` (all or none); ``done`` or ``refused`` makes the answer."""
    state = request.app.state
    try:
        routed = route_by_participant(events, source, state.participants)
        admitted = admit_to_studies(list(enumerate(routed)), source, state.participants)
    except RejectedError as e:
        for reason in {p.reason for p in e.problems}:
            state.metrics.rejections.labels(reason=reason).inc()
        return refused(e.problems)
    fresh = [e for e in admitted if not state.participants.published(e)]
    if fresh:  # a resent message publishes nothing again
        try:
            await state.publisher.publish(fresh)
        except PublishError as e:
            state.metrics.rejections.labels(reason="publish_failed").inc()
            return JSONResponse({"detail": f"not published: {e}; retry"}, status_code=503, headers={"Retry-After": "5"})
        state.participants.note(fresh)
    log.info("lab_request_published", source=source.name, events=len(fresh), resent=len(admitted) - len(fresh))
    return done(admitted)


@router.post("/fhir/Observation")
async def post_observation(request: Request, source: CurrentSource) -> Response:
    """One FHIR R4 Observation."""
    return await _fhir(request, source)


@router.post("/fhir/DiagnosticReport")
async def post_report(request: Request, source: CurrentSource) -> Response:
    """One FHIR R4 DiagnosticReport with its results contained."""
    return await _fhir(request, source)


@router.post("/fhir")
async def post_bundle(request: Request, source: CurrentSource) -> Response:
    """A FHIR R4 Bundle of Observations and DiagnosticReports: all the study's results published,
    or none."""
    return await _fhir(request, source)


async def handle_hl7(
    state: Any, message: str, source: Source | None, peer: str | None = None
) -> tuple[str, list[ParticipantEvent]]:
    """The ACK for one ORU^R01, and the events published for it (none unless the ACK is ``AA``).

    ``source`` None means the sender's MSH-3/MSH-4 names it (the MLLP listener), and ``peer``, the
    sender's address, must be in that source's ``mllp_allow`` networks.

    Raises:
        PublishError: Kafka did not take the events: send no ACK, so that the sender resends.
    """
    if source is None:
        try:
            application, facility = sending_application(message)
        except ValueError as e:
            return ack(message, "AR", [Hl7Error("MSH", 1, None, str(e), code=100, reject=True)]), []
        source = state.sources.by_sending_application(application, facility)
        if source is None:
            state.metrics.rejections.labels(reason="unknown_sender").inc()
            error = Hl7Error(
                "MSH",
                1,
                3,
                f"sending application {application!r} at {facility!r} is not registered",
                code=204,
                reject=True,
            )
            return ack(message, "AR", [error]), []
        if not source.allows_mllp_from(peer or ""):
            state.metrics.rejections.labels(reason="sender_address").inc()
            log.warning("mllp_sender_refused", source=source.name, peer=peer)
            error = Hl7Error(
                "MSH", 1, 3, f"source {source.name!r} may not send from {peer} (trialguard sources mllp-allow)",
                code=204, reject=True,
            )  # fmt: skip
            return ack(message, "AR", [error]), []
    result: Hl7Result = oru_to_events(
        message,
        SourceInfo(source.name, source.site),
        mapping_study(source, state.participants),
        assigning_authority=state.settings.hl7_assigning_authority,
        time_zone=source.time_zone,
        strict=source.strict,
    )
    if result.errors:
        state.metrics.rejections.labels(reason="hl7").inc()
        return result.ack(message), []
    try:
        routed = route_by_participant(result.events, source, state.participants)
        admitted = admit_to_studies(list(enumerate(routed)), source, state.participants)
    except RejectedError as e:
        errors = [Hl7Error("OBX", p.position + 1, None, f"{p.field}: {p.problem}", code=204) for p in e.problems]
        return ack(message, "AE", errors), []
    fresh = [e for e in admitted if not state.participants.published(e)]
    if fresh:  # a resent message publishes nothing again
        await state.publisher.publish(fresh)
        state.participants.note(fresh)
    if result.not_used:
        state.metrics.results_not_used.labels(format="hl7v2").inc(len(result.not_used))
    log.info(
        "hl7_message_published",
        source=source.name,
        events=len(fresh),
        resent=len(admitted) - len(fresh),
        not_used=len(result.not_used),
    )
    return result.ack(message), fresh


async def handle_hl7_batch(
    state: Any, text: str, source: Source | None, peer: str | None = None
) -> tuple[str, list[ParticipantEvent]]:
    """The answer to a message, or to a batch (``FHS``/``BHS``): each of its messages handled on
    its own (:func:`handle_hl7`), their ACKs in one batch.

    Raises:
        PublishError: Kafka did not take a message's events: no answer, so that the sender
            resends (the messages already published publish nothing again).
    """
    received = split(text)
    answers: list[str] = []
    published: list[ParticipantEvent] = []
    for message in received.messages:
        answer, events = await handle_hl7(state, message, source, peer)
        answers.append(answer)
        published += events
    if not received.batch:
        return answers[0], published
    return batch_ack(answers, text), published


@router.post("/hl7v2")
async def post_hl7(request: Request, source: CurrentSource) -> Response:
    """An HL7 v2 ORU^R01 (or a batch of them) over HTTP; the answer is its ACK (``AA``, or
    ``AE``/``AR`` with ``ERR``), or a batch of ACKs."""
    if (busy := unavailable(request)) is not None:
        return busy
    body = await read_body(request)
    if isinstance(body, JSONResponse):
        return body
    try:
        text = decode(body)
    except WireError as e:
        head = body[:4096].decode("ascii", "replace").lstrip("\ufeff")
        answer = ack(head, "AR", [Hl7Error("MSH", 1, 18, str(e), code=102, reject=True)])
        return PlainTextResponse(answer, media_type="x-application/hl7-v2+er7")
    try:
        answer, _ = await handle_hl7_batch(request.app.state, text, source)
    except PublishError as e:
        return JSONResponse({"detail": f"not published: {e}; retry"}, status_code=503, headers={"Retry-After": "5"})
    return PlainTextResponse(answer, media_type="x-application/hl7-v2+er7")


def mllp_handler(state: Any) -> Callable[[str, str], Awaitable[str]]:
    """The MLLP listener's handler: the source is the one registered for MSH-3/MSH-4, and the
    peer's address must be one it may send from."""

    async def handle(message: str, peer: str) -> str:
        if (status := state.status()) != "ready":
            # No ACK: the sender keeps the message and sends it again, as it does when we are down.
            raise RuntimeError(f"gateway not ready ({status})")
        answer, _ = await handle_hl7_batch(state, message, None, peer)
        return answer

    return handle
