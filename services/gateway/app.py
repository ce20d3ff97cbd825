"""The gateway's ASGI app: FastAPI, its Kafka side started in the lifespan.

The lifespan creates the study's topics when absent, loads the participant registry (a FastStream
subscriber, ``services.gateway.registry``) and starts the transactional publisher
(``services.gateway.publisher``). Endpoints find their collaborators on ``app.state``:
``settings``, ``sources`` (:class:`SourceStore`), ``participants`` (each served study's registry,
``services.gateway.routing``), ``publisher``, ``metrics`` and ``status()``.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import replace
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.responses import Response

from services.background import in_background
from services.gateway import json_api, lab_api
from services.gateway.metrics import GatewayMetrics
from services.gateway.publisher import KafkaPublisher, Publisher
from services.gateway.registry import ParticipantRegistry, RegistryConsumer
from services.gateway.routing import Participants
from services.gateway.settings import GatewaySettings
from services.gateway.sources import SourceStore
from services.http import observability_router
from services.kafka import ensure_topics

log = structlog.get_logger("trialguard.gateway")


def create_app(
    settings: GatewaySettings,
    *,
    sources: SourceStore | None = None,
    publisher: Publisher | None = None,
    registry: ParticipantRegistry | None = None,
    registries: Mapping[str, ParticipantRegistry] | None = None,
) -> FastAPI:
    """The gateway app for ``settings``.

    Args:
        settings: where it listens, its data directory, broker and study.
        sources: the registered sources; defaults to the store in the data directory.
        publisher: given (tests), the app is ready at once and its lifespan touches no broker;
            else the lifespan starts the Kafka publisher and the registry consumer.
        registry: the registered participants of a one-study gateway (tests); filled from Kafka
            when not given.
        registries: the registered participants of each study served (tests), instead of ``registry``.
    """
    metrics = GatewayMetrics()
    given = publisher is not None
    state: dict[str, Any] = {"status": "ready" if given else "starting"}
    studies = settings.studies_served
    if registries is None:
        registries = {studies[0]: registry if registry is not None else ParticipantRegistry()}
    participants = Participants({study: registries.get(study) or ParticipantRegistry() for study in studies})

    def status() -> str:
        fenced = getattr(app.state.publisher, "fenced", False)
        return "fenced" if fenced else str(state["status"])

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if given:
            yield
            return
        study_settings = {study: replace(settings.kafka, study_id=study) for study in studies}
        for kafka in study_settings.values():
            await ensure_topics(kafka)
        kafka_publisher = KafkaPublisher(settings, metrics)
        consumers = [RegistryConsumer(study_settings[s], participants.registries[s]) for s in studies]
        await kafka_publisher.start()
        try:
            for consumer in consumers:
                await consumer.start()
            app.state.publisher = kafka_publisher
            state["status"] = "loading_participants"

            async def ready_when_loaded() -> None:
                for consumer in consumers:
                    await consumer.caught_up.wait()
                state["status"] = "ready"
                log.info("gateway_ready", studies=list(studies), participants=len(participants))

            async with in_background(ready_when_loaded()):
                yield
        finally:
            state["status"] = "stopping"
            for consumer in consumers:
                await consumer.stop()
            await kafka_publisher.stop()

    app = FastAPI(title="TrialGuard lab gateway", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.settings = settings
    app.state.sources = sources or SourceStore(settings.sources_path)
    app.state.participants = participants
    app.state.registry = participants.registries[studies[0]]  # the first study's (a one-study gateway's)
    app.state.publisher = publisher
    app.state.metrics = metrics
    app.state.status = status

    @app.middleware("http")
    async def count_requests(request: Request, call_next: Any) -> Response:
        response: Response = await call_next(request)
        route = request.scope.get("route")
        # The route's template, not the path: the label's values stay few whatever is requested.
        endpoint = getattr(route, "path", "other")
        metrics.requests.labels(endpoint=endpoint, status=str(response.status_code)).inc()
        response.headers["Cache-Control"] = "no-store"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response

    app.include_router(observability_router(metrics.registry, status))
    app.include_router(json_api.router)
    app.include_router(lab_api.router)
    return app
