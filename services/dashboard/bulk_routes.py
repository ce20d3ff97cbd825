"""Bulk review over HTTP: ``POST /api/bulk-reviews`` (JSON) and ``POST /findings/bulk-reviews``
(the findings page's form). Both select the findings one by one or as "all N matching this
filter", and both go through ``bulk.plan_reviews`` and ``bulk.take_bulk_review``."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any, Final
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from contracts.reviews import MAX_REVIEW_TEXT_CHARS
from services.dashboard import queries, queues
from services.dashboard.api import site_scope
from services.dashboard.auth import CurrentUser, check_api_csrf, check_csrf, csrf_token
from services.dashboard.bulk import (
    MAX_SELECTED,
    BulkRefusedError,
    check_selection,
    matching_ids,
    plan_reviews,
    take_bulk_review,
)
from services.dashboard.reviewing import ReviewRequest
from services.dashboard.roles import User
from services.dashboard.study_scope import current_study

api_router = APIRouter()
page_router = APIRouter(include_in_schema=False)

FILTER_FIELDS: Final = tuple(
    f.name for f in dataclasses.fields(queries.FindingFilter) if f.name not in queries.SERVER_SET
)
"""The list's filters a bulk review may name (the overdue cutoff is the server's, never the caller's)."""


class BulkReviewBody(BaseModel):
    """A bulk review asked for through the API: ``finding_ids``, or ``filter`` with the
    ``expected_total`` the caller saw (a different count now refuses the batch)."""

    model_config = ConfigDict(extra="forbid")

    action: str = Field(max_length=20)
    comment: str | None = Field(default=None, max_length=MAX_REVIEW_TEXT_CHARS)
    reason: str | None = Field(default=None, max_length=MAX_REVIEW_TEXT_CHARS)
    reason_other: str | None = Field(default=None, max_length=MAX_REVIEW_TEXT_CHARS)
    assignee: str | None = Field(default=None, max_length=64)
    finding_ids: list[str] | None = Field(default=None, max_length=MAX_SELECTED)
    filter: dict[str, str] | None = None
    expected_total: int | None = Field(default=None, ge=0)


async def _bulk(
    request: Request,
    user: User,
    asked: ReviewRequest,
    finding_ids: list[str] | None,
    found: queries.FindingFilter | None,
    expected_total: int | None,
) -> int:
    """Select, check, publish and wait; the number of findings reviewed.

    Raises:
        BulkRefusedError: the batch was refused as a whole (nothing published).
    """
    app = request.app
    if (finding_ids is None) == (found is None):
        raise BulkRefusedError(422, "give either finding_ids or a filter with expected_total, not both or neither")
    with app.state.store.reader() as db:
        if found is not None:
            if expected_total is None:
                raise BulkRefusedError(422, "expected_total: the number of findings the filter showed is required")
            selected = matching_ids(db, found, site_scope(user), expected_total)
            if not selected:
                raise BulkRefusedError(422, "no finding matches the filter")
        else:
            selected = check_selection(finding_ids or [])
        reviews = plan_reviews(db, user, selected, asked, study_id=current_study(), now=app.state.now())
    await take_bulk_review(
        reviews,
        publish_batch=app.state.publish_batch,
        live=app.state.live,
        wait_seconds=app.state.settings.review_wait_seconds,
    )
    for review in reviews:
        app.state.reviews_published.labels(action=review.action.value).inc()
    return len(reviews)


def _filter(request: Request, user: User, params: dict[str, str]) -> queries.FindingFilter:
    """The list's filter from ``params``, its queue made concrete for ``user`` as the list does."""
    try:
        found = queries.FindingFilter.from_params(params)
    except queries.FilterError as error:
        raise BulkRefusedError(422, f"filter: {error}") from None
    return queues.resolve(found, user, queues.study_overdue_cut(request))


@api_router.post("/bulk-reviews", status_code=201, dependencies=[Depends(check_api_csrf)])
async def post_bulk_review(request: Request, user: CurrentUser, body: BulkReviewBody) -> JSONResponse:
    """One review action on many findings, all or nothing: 201 ``{"reviewed": N}`` once Kafka
    committed every event; 403/404/409/422 naming the findings when refused (nothing published)."""
    try:
        unknown = sorted(set(body.filter or {}) - set(FILTER_FIELDS))
        if unknown:
            raise BulkRefusedError(422, f"filter: unknown filters {', '.join(k[:40] for k in unknown)}")
        found = None if body.filter is None else _filter(request, user, body.filter)
        asked = ReviewRequest(body.action, body.comment, body.reason, body.assignee, body.reason_other)
        reviewed = await _bulk(request, user, asked, body.finding_ids, found, body.expected_total)
    except BulkRefusedError as refused:
        return JSONResponse({"detail": refused.message, "findings": refused.problems}, status_code=refused.status)
    return JSONResponse({"reviewed": reviewed, "action": body.action}, status_code=201)


@page_router.post("/findings/bulk-reviews")
async def bulk_review_form(request: Request, user: CurrentUser) -> Response:
    """The findings page's bulk form: the checked rows, or every row the filter matches."""
    form = await request.form(max_fields=MAX_SELECTED + 50)  # a page of checked rows and the filter
    check_csrf(request, str(form.get("csrf", ""))[:128])
    text = {name: str(form.get(name, ""))[:MAX_REVIEW_TEXT_CHARS] for name in ReviewRequest.__dataclass_fields__}
    params = {name: str(form.get(name, "")) for name in FILTER_FIELDS}
    kept = {k: v for k, v in params.items() if v}
    back = "/findings" + (f"?{urlencode(kept)}" if kept else "")
    try:
        found = _filter(request, user, params)
        every = str(form.get("scope", "")) == "all"
        expected = str(form.get("expected_total", ""))
        reviewed = await _bulk(
            request,
            user,
            ReviewRequest(
                text["action"][:20], text["comment"], text["reason"], text["assignee"][:64], text["reason_other"]
            ),
            None if every else [str(v)[:64] for v in form.getlist("finding_id")[: MAX_SELECTED + 1]],
            found if every else None,
            int(expected) if expected.isdigit() else None,
        )
    except BulkRefusedError as refused:
        return await asyncio.to_thread(_refused_page, request, user, refused, back)
    done = urlencode(kept | {"bulk_done": f"{text['action']} × {reviewed}"})
    return RedirectResponse(f"/findings?{done}", status_code=303)


def _refused_page(request: Request, user: User, refused: BulkRefusedError, back: str) -> Response:
    context: dict[str, Any] = {
        "user": user,
        "csrf": csrf_token(request),
        "study": request.app.state.settings.kafka.study_id,
        "refused": refused,
        "back": back,
    }
    templates = request.app.state.templates
    return templates.TemplateResponse(  # type: ignore[no-any-return]
        request, "bulk_refused.html", context, status_code=refused.status
    )
