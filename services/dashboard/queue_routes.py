"""The header's study switcher and work queues, saved views, and their API.

``nav_context`` is what every page's header shows: the studies the user may switch between, the
count of each work queue, the user's saved views. The routes save and delete views (forms, with
the session's CSRF token) and give the same data to API clients.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any
from urllib.parse import parse_qsl, urlencode

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import RedirectResponse, Response

from services.dashboard import queues
from services.dashboard.api import site_scope
from services.dashboard.auth import CurrentUser, check_api_csrf, check_csrf
from services.dashboard.roles import GRANTS, Action, User
from services.dashboard.saved_views import ViewError
from services.dashboard.study_scope import current_study, studies_of

router = APIRouter()


def cutoff(request: Request) -> queues.OverdueCut:
    """When an unresolved finding of the request's study is overdue (``queues.study_overdue_cut``)."""
    return queues.study_overdue_cut(request)


def nav_context(request: Request, user: User) -> dict[str, Any]:
    """The header of a page: study switcher, work queues with their counts, saved views."""
    with request.app.state.store.reader() as db:
        counts = queues.counts(db, user, site_scope(user), cutoff(request))
    return {
        "study": current_study(),
        "studies": studies_of(request, user),
        "queues": [(name, label, counts[name]) for name, label in queues.QUEUES],
        "views": request.app.state.views.of(user.name, current_study()),
    }


@router.post("/views", include_in_schema=False)
def save_view(
    request: Request,
    user: CurrentUser,
    name: Annotated[str, Form(max_length=200)],
    query: Annotated[str, Form(max_length=4000)] = "",
    csrf: Annotated[str, Form(max_length=128)] = "",
) -> Response:
    check_csrf(request, csrf)
    params = dict(parse_qsl(query))
    try:
        view = request.app.state.views.save(user.name, current_study(), name, params)
    except ViewError as error:
        raise HTTPException(422, str(error)) from None
    return RedirectResponse("/findings?" + urlencode({"study": current_study()}) + "&" + view.query, status_code=303)


@router.post("/views/{view_id}/delete", include_in_schema=False)
def delete_view(
    request: Request, user: CurrentUser, view_id: int, csrf: Annotated[str, Form(max_length=128)] = ""
) -> Response:
    check_csrf(request, csrf)
    try:
        request.app.state.views.delete(user.name, current_study(), view_id)
    except ViewError as error:
        raise HTTPException(404, str(error)) from None
    return RedirectResponse("/findings?" + urlencode({"study": current_study()}), status_code=303)


@router.get("/api/queues")
def queue_counts(request: Request, user: CurrentUser) -> dict[str, Any]:
    """``{"study", "overdue_days", "queues": {"mine": N, "unassigned": N, "overdue": N}}``."""
    with request.app.state.store.reader() as db:
        counts = queues.counts(db, user, site_scope(user), cutoff(request))
    days = request.app.state.settings.overdue_days_of(current_study())
    return {"study": current_study(), "overdue_days": days, "queues": counts}


@router.get("/api/views")
def list_views(request: Request, user: CurrentUser) -> list[dict[str, Any]]:
    """The user's saved views in the request's study: id, name, query."""
    return [asdict(view) for view in request.app.state.views.of(user.name, current_study())]


@router.post("/api/views", status_code=201, dependencies=[Depends(check_api_csrf)])
def api_save_view(request: Request, user: CurrentUser, body: dict[str, Any]) -> dict[str, Any]:
    """Save ``{"name": …, "query": {filter and sort parameters}}`` as the user's view."""
    name, params = body.get("name"), body.get("query", {})
    texts = isinstance(params, dict) and all(isinstance(v, str) for v in params.values())
    if not isinstance(name, str) or not texts:
        raise HTTPException(422, 'expected {"name": "…", "query": {"parameter": "value", …}}')
    try:
        view = request.app.state.views.save(user.name, current_study(), name[:200], params)
    except ViewError as error:
        raise HTTPException(422, str(error)) from None
    return asdict(view)


@router.get("/api/assignees")
def list_assignees(request: Request, user: CurrentUser, site: str = "") -> list[str]:
    """The study's users a finding of ``site`` may be assigned to (for those who may assign)."""
    if Action.ASSIGN not in GRANTS[user.role].review:
        raise HTTPException(403, f"a {user.role.value} may not assign findings")
    return queues.assignees(request.app.state.users, current_study(), site[:64])
