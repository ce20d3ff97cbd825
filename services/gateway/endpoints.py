"""What every publishing endpoint does around its own parsing: refuse while not ready, read the
body within its bound, answer 422 with every problem, publish and answer 202.

The FHIR and HL7 endpoints use these too, so that every way in answers alike.
"""

from __future__ import annotations

from collections import Counter

import structlog
from fastapi import Request
from fastapi.responses import JSONResponse

from contracts import ParticipantEvent
from services.gateway.admission import Problem
from services.gateway.publisher import PublishError
from services.gateway.sources import Source

log = structlog.get_logger("trialguard.gateway")


def unavailable(request: Request) -> JSONResponse | None:
    """503 while the gateway is not ready (the participant registry still loading, the publisher
    stopped or fenced), else None."""
    status = request.app.state.status()
    if status == "ready":
        return None
    request.app.state.metrics.rejections.labels(reason="unavailable").inc()
    return JSONResponse({"detail": f"not ready ({status}); retry later"}, status_code=503, headers={"Retry-After": "5"})


async def read_body(request: Request) -> bytes | JSONResponse:
    """The request body, or a 413 answer as soon as it is known to exceed the bound (by its
    Content-Length, or while reading a chunked body): a huge body is never held in memory."""
    limit: int = request.app.state.settings.max_body_bytes
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return _too_large(request, limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return _too_large(request, limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(request: Request, limit: int) -> JSONResponse:
    request.app.state.metrics.rejections.labels(reason="too_large").inc()
    detail = f"the body is larger than {limit:,} bytes: split it into several requests"
    return JSONResponse({"detail": detail}, status_code=413)


def rejected(request: Request, problems: list[Problem], source: Source) -> JSONResponse:
    """422 listing every problem; nothing was published. Logged by reason and field, no values."""
    metrics = request.app.state.metrics
    for reason in {p.reason for p in problems}:
        metrics.rejections.labels(reason=reason).inc()
    fields = Counter(p.field.split(".")[0] for p in problems)
    log.info("request_rejected", source=source.name, problems=len(problems), fields=dict(fields.most_common(10)))
    detail = "some events were refused; nothing of this request was published"
    return JSONResponse({"detail": detail, "problems": [p.as_json() for p in problems]}, status_code=422)


async def submit(request: Request, events: list[ParticipantEvent], source: Source) -> JSONResponse:
    """Publish admitted events (all or none) and answer 202 with their ids, or 503 when Kafka did
    not take them (the sender retries; nothing was published)."""
    app_state = request.app.state
    fresh = [e for e in events if not app_state.participants.published(e)]
    try:
        if fresh:  # a resent request publishes nothing again: same ids, same answer
            await app_state.publisher.publish(fresh)
    except PublishError as e:
        app_state.metrics.rejections.labels(reason="publish_failed").inc()
        return JSONResponse({"detail": f"not published: {e}; retry"}, status_code=503, headers={"Retry-After": "5"})
    # Own registrations count at once: a lab result may follow in the next request.
    app_state.participants.note(events)
    log.info("request_published", source=source.name, events=len(events))
    return JSONResponse({"event_ids": [str(e.event_id) for e in events]}, status_code=202)
