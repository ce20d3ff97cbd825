"""The deviation dashboard: a FastAPI app whose Kafka side is FastStream.

The FastStream broker starts in the app's lifespan (FastStream's own ASGI app cannot stream to a
browser), the subscribers feed the SQLite read model, and open pages hear of new findings through
server-sent events.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from prometheus_client import CollectorRegistry, Counter, Gauge
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware

from contracts import AccessChanged, FindingReviewed
from protocol.registry import protocol_for
from services.access_log import PUBLISH_SECONDS, AccessLogError
from services.dashboard import accounts, api, auth, bulk, bulk_routes, pages, preferences, queue_routes, times
from services.dashboard.batch_publish import BatchPublishError, ReviewBatchPublisher
from services.dashboard.clocks import protocol_clocks
from services.dashboard.consumer import ReadModelConsumer
from services.dashboard.live import Broadcaster
from services.dashboard.saved_views import SavedViews
from services.dashboard.settings import DashboardSettings
from services.dashboard.store import ReadModel
from services.dashboard.study_scope import StudyScoped, StudyScopeMiddleware
from services.dashboard.throttle import LoginThrottle
from services.dashboard.users import UserStore
from services.http import observability_router

log = structlog.get_logger("trialguard.dashboard")

HERE = Path(__file__).parent

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; connect-src 'self'; img-src 'self' data:; "
    # Inline styles only: matplotlib's SVG styles its shapes with style attributes. No inline script.
    "style-src 'self' 'unsafe-inline'; font-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)

SESSION_HOURS = 8


def create_app(settings: DashboardSettings, users: UserStore | None = None) -> FastAPI:
    """The dashboard app for ``settings``; ``users`` defaults to the store in the data directory."""
    registry = CollectorRegistry(auto_describe=True)
    state: dict[str, Any] = {"status": "starting"}

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        stores = app.state.stores
        for study in settings.served_studies:
            stores[study] = ReadModel(settings.read_model_path_of(study), settings.kafka_of(study).topics)
        consumer = ReadModelConsumer(settings.kafka, stores, app.state.live.applied)
        app.state.consumer = consumer
        await consumer.start()
        # A bulk review's reviews, in one transaction, to the topic of their study.
        batches = ReviewBatchPublisher(settings, lambda study: stores[study].topics.finding_reviews)
        await batches.start()
        app.state.publish_batch = batches.publish

        async def publish(review: FindingReviewed) -> None:
            # Each review goes to its own study's topic (a study this dashboard serves, or none).
            topic = stores[review.study_id].topics.finding_reviews
            # The broker's producer is idempotent with acks=all: this returns once Kafka has it.
            await consumer.broker.publish(review.model_dump_json().encode(), topic, key=review.participant_id.encode())
            app.state.reviews_published.labels(action=review.action.value).inc()

        app.state.publish = publish
        loop = asyncio.get_running_loop()

        def publish_access(event: AccessChanged) -> None:
            # Called from a worker thread (a page's store call, inside its SQLite transaction):
            # hand the event to the broker's loop and wait until Kafka has it.
            sent = consumer.broker.publish(
                event.model_dump_json().encode(), stores[event.study_id].topics.access_log, key=event.subject.encode()
            )
            try:
                asyncio.run_coroutine_threadsafe(sent, loop).result(PUBLISH_SECONDS)
            except Exception as error:
                raise AccessLogError(f"the access log did not take the change ({type(error).__name__})") from None

        app.state.publish_access = publish_access
        state["status"] = "ready"
        log.info("dashboard_ready", studies=list(settings.served_studies))
        try:
            yield
        finally:
            state["status"] = "stopping"
            await batches.stop()
            await consumer.stop()
            for store in stores.values():
                store.close()

    app = FastAPI(
        title="TrialGuard dashboard",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,  # served below, behind the login like the rest of /api/
    )
    app.state.settings = settings
    app.state.users = users or UserStore(settings.users_path)
    app.state.views = SavedViews(app.state.users.path)
    app.state.login_throttle = LoginThrottle()
    app.state.publish_access = _not_connected
    app.state.publish_batch = _no_batches
    app.state.live = Broadcaster()
    # One read model and one protocol per study; app.state.store and app.state.protocol are the
    # request's study's (study_scope): code written for one study reads only the study asked for.
    app.state.stores = {}
    app.state.store = StudyScoped(app.state.stores)
    app.state.protocols = {study: protocol_for(study) for study in settings.served_studies}
    app.state.protocol = StudyScoped(app.state.protocols)
    app.state.templates = Jinja2Templates(directory=HERE / "templates")  # autoescape on for .html
    app.state.templates.env.globals["study"] = ""  # pages name their study (render); others none
    app.state.clocks = StudyScoped({study: protocol_clocks(p) for study, p in app.state.protocols.items()})
    app.state.now = lambda: dt.datetime.now(dt.UTC)  # the clocks' "now"; tests inject their own
    app.state.templates.env.globals["bulk_actions_for"] = bulk.actions_for
    app.state.templates.env.globals["bulk_reason_choices"] = bulk.reason_choices
    times.install(app.state.templates.env)  # event_time / system_time: one rule for every time shown
    app.state.reviews_published = Counter(
        "trialguard_reviews_published", "Review actions published, by action", ["action"], registry=registry
    )
    Gauge("trialguard_dashboard_live_pages", "Pages listening for live updates", registry=registry).set_function(
        lambda: app.state.live.listeners
    )

    app.add_middleware(
        SessionMiddleware,
        secret_key=settings.session_key(),
        session_cookie="trialguard_session",
        max_age=SESSION_HOURS * 3600,
        same_site="strict",
        https_only=settings.secure_cookies,
    )

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Any) -> Response:
        response: Response = await call_next(request)
        response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "same-origin"
        if request.url.path not in ("/metrics", "/health") and not request.url.path.startswith("/static/"):
            response.headers["Cache-Control"] = "no-store"
        return response

    @app.exception_handler(auth.LoginRequiredError)
    async def login_required(request: Request, _: Exception) -> Response:
        if request.url.path.startswith("/api/"):
            return JSONResponse({"detail": "log in, or send Authorization: Bearer <token>"}, status_code=401)
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={_quote(target)}", status_code=303)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> Response:
        if request.url.path.startswith("/api/") or request.url.path in ("/health", "/metrics"):
            return JSONResponse({"detail": error.detail}, status_code=error.status_code, headers=error.headers)
        return app.state.templates.TemplateResponse(  # type: ignore[no-any-return]
            request,
            "error.html",
            {"status": error.status_code, "detail": str(error.detail)},
            status_code=error.status_code,
        )

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> Response:
        problems = [{"field": ".".join(map(str, e["loc"])), "problem": e["msg"]} for e in error.errors()]
        if request.url.path.startswith("/api/"):
            return JSONResponse({"detail": problems}, status_code=422)
        text = "; ".join(f"{p['field']}: {p['problem']}" for p in problems)
        return app.state.templates.TemplateResponse(  # type: ignore[no-any-return]
            request, "error.html", {"status": 422, "detail": text}, status_code=422
        )

    @app.get("/api/openapi.json", include_in_schema=False)
    def openapi(_: auth.CurrentUser) -> dict[str, Any]:
        return app.openapi()

    app.include_router(observability_router(registry, lambda: str(state["status"])))
    app.include_router(auth.router)
    app.include_router(api.router, prefix="/api")
    app.include_router(bulk_routes.api_router, prefix="/api")
    app.include_router(bulk_routes.page_router)
    app.include_router(pages.router)
    app.include_router(accounts.router)
    app.include_router(preferences.router)
    app.include_router(queue_routes.router)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.add_middleware(StudyScopeMiddleware)  # outermost: every layer below sees the request's study
    return app


def _not_connected(event: AccessChanged) -> None:
    raise AccessLogError("the dashboard is not connected to Kafka yet")


async def _no_batches(reviews: Sequence[FindingReviewed]) -> None:
    raise BatchPublishError("the dashboard is not connected to Kafka yet")


def _quote(text: str) -> str:
    return quote(text, safe="/")
