"""The JSON API under /api/: the same data, filters and permissions as the pages.

Authenticated by the session cookie or ``Authorization: Bearer <token>``. Every list is filtered,
sorted, paged and counted in SQL (see ``queries``).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from sse_starlette.sse import EventSourceResponse

from contracts.reviews import MAX_REVIEW_TEXT_CHARS
from services.dashboard import queries, queues
from services.dashboard.auth import CurrentUser, check_api_csrf
from services.dashboard.clocks import clock_fields, read_row_clock
from services.dashboard.explaining import explanation_of
from services.dashboard.exports import ExportRows, csv_lines, export_rows, workbook
from services.dashboard.reviewing import ReviewError, ReviewRequest, take_review
from services.dashboard.roles import User, may_read_review_history, may_read_site
from services.dashboard.study_scope import current_study
from services.dashboard.timeline import timeline_of

router = APIRouter()


def site_scope(user: User) -> str | None:
    """The only site a user may see, or None for every site."""
    return None if may_read_site(user, "\0any other site\0") else (user.site or "\0no site\0")


def list_params(request: Request, user: CurrentUser) -> tuple[queries.FindingFilter, queries.Page]:
    """The filter and page named by the query string, its work queue made concrete for the user
    and the study (``queues.resolve``).

    Raises:
        HTTPException: 422 naming the parameter that cannot be understood.
    """
    params = dict(request.query_params)
    try:
        found, page = queries.FindingFilter.from_params(params), queries.Page.from_params(params)
    except queries.FilterError as error:
        raise HTTPException(422, str(error)) from None
    return queues.resolve(found, user, queues.study_overdue_cut(request)), page


def _item(row: dict[str, Any]) -> dict[str, Any]:
    hidden = ("priority", "occurred_utc", "body", "explanation", "trigger_events", "reviews")
    return {key: value for key, value in row.items() if key not in hidden}


def _clocked(request: Request, row: dict[str, Any]) -> dict[str, Any]:
    """The row as the API shows it, with its ``clock`` (due time, overdue, ages) and, for an alert,
    ``alert_severity`` (the wire's ``severity`` stays null for alerts)."""
    reading = read_row_clock(row, request.app.state.clocks, request.app.state.now())
    return _item(row) | {"clock": clock_fields(reading), "alert_severity": reading.severity}


@router.get("/findings")
def list_findings(request: Request, user: CurrentUser, listed: Annotated[Any, Depends(list_params)]) -> dict[str, Any]:
    """``{"total": N, "items": [...], "newest_seq": S}``: one page of findings under the filter."""
    found, page = listed
    scope = site_scope(user)
    with request.app.state.store.reader() as db:
        return {
            "total": queries.finding_total(db, found, scope),
            "items": [_clocked(request, row) for row in queries.finding_rows(db, found, page, scope)],
            "newest_seq": queries.newest_seq(db, scope),
        }


@router.get("/summary")
def summary(request: Request, user: CurrentUser, listed: Annotated[Any, Depends(list_params)]) -> dict[str, Any]:
    """Counts by category and status under the filter, and the total."""
    found, _ = listed
    scope = site_scope(user)
    with request.app.state.store.reader() as db:
        return {"total": queries.finding_total(db, found, scope), "by_category": queries.summary(db, found, scope)}


@router.get("/arrivals")
def arrivals(request: Request, user: CurrentUser, listed: Annotated[Any, Depends(list_params)]) -> dict[str, Any]:
    """``{"arrived": N, "newest_seq": S}``: findings under the filter that came after its ``as_of``."""
    found, _ = listed
    scope = site_scope(user)
    with request.app.state.store.reader() as db:
        return {"arrived": queries.arrived(db, found, scope), "newest_seq": queries.newest_seq(db, scope)}


def _exported(request: Request, user: User, listed: tuple[queries.FindingFilter, queries.Page]) -> ExportRows:
    found, page = listed
    with request.app.state.store.reader() as db:
        return export_rows(db, found, page, site_scope(user), with_history=may_read_review_history(user))


@router.get("/findings.csv")
def findings_csv(request: Request, user: CurrentUser, listed: Annotated[Any, Depends(list_params)]) -> Any:
    """The filtered list as CSV (every page, up to 100,000 rows), with the why, status, assignee,
    last reason, comments and the review history."""
    lines = csv_lines(_exported(request, user, listed))
    return StreamingResponse(
        lines, media_type="text/csv", headers={"Content-Disposition": 'attachment; filename="findings.csv"'}
    )


XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@router.get("/findings.xlsx")
def findings_xlsx(request: Request, user: CurrentUser, listed: Annotated[Any, Depends(list_params)]) -> Response:
    """The filtered list as an Excel workbook: the findings, and their review history on a second sheet."""
    content = workbook(_exported(request, user, listed))
    return Response(
        content, media_type=XLSX_TYPE, headers={"Content-Disposition": 'attachment; filename="findings.xlsx"'}
    )


def finding_for(request: Request, user: User, finding_id: str) -> dict[str, Any]:
    """One finding the user may see.

    Raises:
        HTTPException: 404 when absent or outside the user's site.
    """
    with request.app.state.store.reader() as db:
        found = queries.finding(db, finding_id)
        if found is None or not may_read_site(user, found["site_id"]):
            raise HTTPException(404, "no such finding")
        found["trigger_events"] = queries.events_by_id(db, [str(e) for e in found["body"]["trigger_event_ids"]])
        found["explanation"] = explanation_of(db, found["body"])
    if not may_read_review_history(user):
        found["reviews"] = []
    return found


@router.get("/findings/{finding_id}")
def get_finding(request: Request, user: CurrentUser, finding_id: str) -> dict[str, Any]:
    """Every field of a finding, its trigger events and its review history."""
    found = finding_for(request, user, finding_id)
    explanation = found["explanation"]
    return _clocked(request, found) | {
        "explanation": explanation.text,
        "failing_evidence": sorted(explanation.failing),
        "value_events": [source.event_id for source in explanation.sources],
        "finding": found["body"],
        "trigger_events": found["trigger_events"],
        "reviews": found["reviews"],
    }


class ReviewBody(BaseModel):
    """A review action asked for through the API."""

    model_config = ConfigDict(extra="forbid")

    action: str = Field(max_length=20)
    comment: str | None = Field(default=None, max_length=MAX_REVIEW_TEXT_CHARS)
    reason: str | None = Field(default=None, max_length=MAX_REVIEW_TEXT_CHARS)
    assignee: str | None = Field(default=None, max_length=64)
    reason_other: str | None = Field(default=None, max_length=MAX_REVIEW_TEXT_CHARS)


@router.post("/findings/{finding_id}/reviews", status_code=201, dependencies=[Depends(check_api_csrf)])
async def post_review(request: Request, user: CurrentUser, finding_id: str, body: ReviewBody) -> JSONResponse:
    """Take a review action; 201 with the ``FindingReviewed`` event once Kafka has it."""
    app = request.app
    with app.state.store.reader() as db:
        try:
            review = await take_review(
                db,
                user,
                finding_id,
                ReviewRequest(body.action, body.comment, body.reason, body.assignee, body.reason_other),
                study_id=current_study(),
                publish=app.state.publish,
                live=app.state.live,
                wait_seconds=app.state.settings.review_wait_seconds,
                users=app.state.users,
            )
        except ReviewError as error:
            return JSONResponse({"detail": error.message}, status_code=error.status)
    return JSONResponse(review.model_dump(mode="json"), status_code=201)


@router.get("/participants/{participant_id}/timeline")
def participant_timeline(request: Request, user: CurrentUser, participant_id: str) -> dict[str, Any]:
    """A participant's events, visit windows, findings and lifecycle state."""
    timeline = timeline_of(request.app, participant_id)
    if timeline is None or not may_read_site(user, timeline["site_id"]):
        raise HTTPException(404, "no such participant")
    return {key: value for key, value in timeline.items() if key != "svg"}


@router.get("/live")
async def live(request: Request, user: CurrentUser) -> EventSourceResponse:
    """Server-sent events: ``changed`` after each batch that brought findings or reviews."""
    return EventSourceResponse(request.app.state.live.updates(site_scope(user), study=current_study()), ping=15)
