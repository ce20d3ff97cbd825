"""``POST /v1/events``: contract-v1 JSON, as one object, an array of objects, or NDJSON.

202 ``{"event_ids": [...]}`` once Kafka has committed every event of the request; 422 with every
problem of every event (``index`` in a JSON body, 0-based; ``line`` in NDJSON, 1-based) and nothing
published; 413 for a body over ``GatewaySettings.max_body_bytes``; 415 for another content type.
"""

from __future__ import annotations

import json

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic_core import from_json

from contracts import MAX_NESTING_DEPTH, ContractError, ParticipantEvent, parse_event
from contracts.errors import Violation
from contracts.limits import too_deep
from services.gateway.admission import Problem, RejectedError, contract_problems
from services.gateway.auth import CurrentSource
from services.gateway.endpoints import read_body, rejected, submit, unavailable
from services.gateway.routing import admit_to_studies

log = structlog.get_logger("trialguard.gateway.json")

router = APIRouter()

NDJSON = "application/x-ndjson"


def parse_events(body: bytes, content_type: str) -> tuple[list[tuple[int, ParticipantEvent]], list[Problem], str]:
    """The events of a request body, and the problems of those that break the contract.

    Args:
        body: the request body (already bounded in size).
        content_type: ``application/x-ndjson`` for one event a line; anything else is JSON: one
            object, or an array of objects.

    Returns:
        (position, event) pairs, problems, and how positions are named (``"line"`` or ``"index"``).
    """
    events: list[tuple[int, ParticipantEvent]] = []
    problems: list[Problem] = []
    if content_type == NDJSON:
        for number, line in enumerate(body.split(b"\n"), 1):
            if not line.strip():
                continue
            try:
                events.append((number, parse_event(line)))
            except ContractError as e:
                problems += contract_problems(e, number, "line")
        if not events and not problems:
            problems.append(Problem(0, "<message>", "no events: the body is empty", where="line"))
        return events, problems, "line"
    if body.lstrip()[:1] != b"[":
        try:
            events.append((0, parse_event(body)))
        except ContractError as e:
            problems += contract_problems(e, 0)
        return events, problems, "index"
    for index, item in enumerate(_array(body)):
        if isinstance(item, ContractError):
            problems += contract_problems(item, index)
            continue
        try:
            events.append((index, parse_event(item)))
        except ContractError as e:
            problems += contract_problems(e, index)
    if not events and not problems:
        problems.append(Problem(0, "<message>", "no events: the array is empty"))
    return events, problems, "index"


def _array(body: bytes) -> list[str | ContractError]:
    """Each element of a JSON array as JSON text of its own (to go through ``parse_event`` and its
    limits), or the error of the whole body at index 0."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as e:
        return [ContractError([Violation("<message>", f"not UTF-8: invalid byte at position {e.start}", "not_utf8")])]
    if too_deep(text, MAX_NESTING_DEPTH + 1):  # one level more: the array itself
        problem = f"arrays and objects nested more than {MAX_NESTING_DEPTH} levels deep"
        return [ContractError([Violation("<message>", problem, "too_deep")])]
    try:
        items = from_json(text, allow_inf_nan=False)
    except ValueError as e:
        return [ContractError([Violation("<message>", f"not JSON: {e}", "json_invalid")])]
    if not isinstance(items, list):
        return [ContractError([Violation("<message>", "not a JSON array", "invalid")])]
    return [json.dumps(item, ensure_ascii=False, allow_nan=False) for item in items]


@router.post("/v1/events", status_code=202)
async def post_events(request: Request, source: CurrentSource) -> JSONResponse:
    """Publish contract-v1 events from a registered source, all or none."""
    if (busy := unavailable(request)) is not None:
        return busy
    body = await read_body(request)
    if isinstance(body, JSONResponse):
        return body
    content_type = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if content_type not in ("application/json", NDJSON) and not content_type.endswith("+json"):
        request.app.state.metrics.rejections.labels(reason="unsupported_media_type").inc()
        return JSONResponse({"detail": f"send application/json or {NDJSON}"}, status_code=415)
    events, problems, where = parse_events(body, content_type)
    admitted: list[ParticipantEvent] = []
    try:
        # Problems of the gateway's rules are listed even when others broke the contract.
        admitted = admit_to_studies(events, source, request.app.state.participants, where)
    except RejectedError as e:
        problems = sorted(problems + e.problems, key=lambda p: p.position)
    if problems:
        return rejected(request, problems, source)
    return await submit(request, admitted, source)
