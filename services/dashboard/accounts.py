"""Account pages: a new user's set-password link, and the admin's users page.

Nobody chooses another person's password: an admin (here or with ``trialguard users add``) gets a
one-time set-password link for a new user and hands it over; the user chooses their password on
``/set-password``. Every change is published to the access log before it is kept; when Kafka does
not take it, nothing changes and the page says so (503).
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

import structlog
from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import RedirectResponse, Response

from services.access_log import AccessLogError, AccessRecorder
from services.dashboard.auth import CurrentUser, check_csrf, csrf_token
from services.dashboard.roles import Role, may_manage_users
from services.dashboard.study_scope import current_study_or_none
from services.dashboard.users import MAX_PASSWORD_CHARS, UserError, UserStore

log = structlog.get_logger("trialguard.dashboard.accounts")

router = APIRouter(include_in_schema=False)

MAX_LINK_CHARS = 100
"""Longer than any set-password token (43 characters): a longer one is refused unhashed."""


def recorder(request: Request, operator: str) -> AccessRecorder:
    """The access-log recorder of a change made on the dashboard by ``operator``: the request's
    study's access log (a set-password page, outside any study, uses the first study's)."""
    study = current_study_or_none() or request.app.state.settings.served_studies[0]
    return AccessRecorder(study, operator, "dashboard", request.app.state.publish_access)


def _set_password_page(request: Request, token: str, error: str = "", status: int = 200) -> Response:
    users: UserStore = request.app.state.users
    user = users.user_for_link(token) if 0 < len(token) <= MAX_LINK_CHARS else None
    context = {"token": token, "who": user, "error": error, "csrf": csrf_token(request), "user": None}
    if user is None and not error:
        context["error"] = "This set-password link is unknown, used or expired: ask an administrator for a new one."
        status = 410
    return request.app.state.templates.TemplateResponse(  # type: ignore[no-any-return]
        request, "set_password.html", context, status_code=status
    )


@router.get("/set-password")
def set_password_form(request: Request, token: str = "") -> Response:
    return _set_password_page(request, token)


@router.post("/set-password")
def set_password(
    request: Request,
    token: Annotated[str, Form(max_length=MAX_LINK_CHARS)],
    password: Annotated[str, Form(max_length=MAX_PASSWORD_CHARS)],
    confirm: Annotated[str, Form(max_length=MAX_PASSWORD_CHARS)],
    csrf: Annotated[str, Form(max_length=128)] = "",
) -> Response:
    check_csrf(request, csrf)
    if password != confirm:
        return _set_password_page(request, token, "The two passwords differ.", 422)
    users: UserStore = request.app.state.users
    try:
        user = users.set_password_with_link(token, password, recorder(request, operator="-"))
    except UserError as error:
        status = 410 if "link" in str(error) else 422
        return _set_password_page(request, token, str(error), status)
    except AccessLogError:
        log.error("access_log_unavailable", action="user-password-set")
        return _set_password_page(request, token, "The audit trail is not reachable: nothing changed, try later.", 503)
    log.info("password_set_with_link", user=user.name)
    return RedirectResponse("/login?" + urlencode({"next": "/"}), status_code=303)


@router.get("/admin/users")
def users_page(request: Request, user: CurrentUser, error: str = "") -> Response:
    if not may_manage_users(user):
        raise HTTPException(403, "only an admin manages users")
    return _users_page(request, user, error=error[:300])


def _users_page(request: Request, user: object, status: int = 200, **context: object) -> Response:
    return request.app.state.templates.TemplateResponse(  # type: ignore[no-any-return]
        request,
        "users.html",
        {"user": user, "roles": list(Role), "csrf": csrf_token(request)}
        | {"users": request.app.state.users.list_states(current_study_or_none())}  # the study's users
        | {"study": current_study_or_none() or ""}
        | {"error": "", "link": "", "added": ""}
        | context,
        status_code=status,
    )


@router.post("/admin/users")
def add_user(
    request: Request,
    user: CurrentUser,
    name: Annotated[str, Form(max_length=64)],
    role: Annotated[str, Form(max_length=20)],
    site: Annotated[str, Form(max_length=64)] = "",
    csrf: Annotated[str, Form(max_length=128)] = "",
) -> Response:
    check_csrf(request, csrf)
    if not may_manage_users(user):
        raise HTTPException(403, "only an admin manages users")
    users: UserStore = request.app.state.users
    changes = recorder(request, user.name)
    try:
        users.add(name, role, site=site or None, recorder=changes)
        token = users.issue_password_link(name, changes, new_user=True)
    except UserError as error:
        return RedirectResponse("/admin/users?" + urlencode({"error": str(error)}), status_code=303)
    except AccessLogError:
        log.error("access_log_unavailable", action="user-added")
        return _users_page(request, user, 503, error="The audit trail is not reachable: nobody was added, try later.")
    # Shown once, on this answer only (never in a redirect URL, a log or the page of anyone else).
    link = str(request.base_url).rstrip("/") + "/set-password?" + urlencode({"token": token})
    return _users_page(request, user, added=name, link=link)
