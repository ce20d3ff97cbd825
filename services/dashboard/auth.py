"""Who is asking: the login form, the signed session cookie, bearer tokens, CSRF and throttling.

Pages use the session cookie (signed by Starlette's SessionMiddleware: HttpOnly, SameSite=strict);
the API takes the same cookie or ``Authorization: Bearer <token>`` (from ``trialguard users
token``). Every state-changing form carries the session's CSRF token; a cookie-authenticated API
call that changes state sends it in ``X-CSRF-Token``. Failed logins are throttled per user name and
per client address.
"""

from __future__ import annotations

import secrets
import time
from typing import Annotated

import structlog
from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import RedirectResponse, Response

from services.dashboard.roles import User
from services.dashboard.throttle import LoginThrottle
from services.dashboard.users import UserStore

log = structlog.get_logger("trialguard.dashboard.auth")

router = APIRouter()


class LoginRequiredError(Exception):
    """Nobody is logged in: pages redirect to /login, the API answers 401."""


def csrf_token(request: Request) -> str:
    """The session's CSRF token (made on first use)."""
    token = request.session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


def check_csrf(request: Request, submitted: str | None) -> None:
    """Raises: HTTPException 403 when the submitted token is not the session's."""
    expected = request.session.get("csrf")
    if not (isinstance(expected, str) and submitted and secrets.compare_digest(expected, submitted)):
        raise HTTPException(403, "the form has expired or did not come from this site: reload the page and try again")


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def current_user(request: Request) -> User:
    """The user of this request, from a bearer token or the session cookie.

    Raises:
        LoginRequiredError: neither names a known user.
    """
    users: UserStore = request.app.state.users
    token = _bearer(request)
    if token is not None:
        user = users.user_for_token(token)
        if user is None:
            raise LoginRequiredError
        request.state.by_token = True
        return user
    name, uid, version = (request.session.get(key) for key in ("user", "uid", "sv"))
    valid = isinstance(name, str) and isinstance(uid, str) and isinstance(version, int)
    # Checked against the store on every request: a logout, a password or role change, disabling
    # or removing the user ends the session at once, whatever the cookie's own signed age.
    user = users.session_user(name, uid, version) if valid else None  # type: ignore[arg-type]
    if user is None:
        raise LoginRequiredError
    request.state.by_token = False
    return user


CurrentUser = Annotated[User, Depends(current_user)]


def check_api_csrf(request: Request, _: CurrentUser) -> None:
    """A state-changing API call made with the session cookie must carry the CSRF header (a bearer
    token is not sent by browsers on their own, so it needs none)."""
    if not getattr(request.state, "by_token", False):
        check_csrf(request, request.headers.get("x-csrf-token"))


def _safe_next(target: str | None) -> str:
    # Only a local path: never redirect a login to another site.
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


def _login_page(
    request: Request, target: str, error: str = "", status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return request.app.state.templates.TemplateResponse(  # type: ignore[no-any-return]
        request, "login.html", {"next": target, "error": error, "csrf": csrf_token(request)}, status, headers
    )


@router.get("/login")
def login_form(request: Request, next: str = "/") -> Response:
    return _login_page(request, _safe_next(next))


@router.post("/login")
def login(
    request: Request,
    name: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=1024)],
    csrf: Annotated[str, Form(max_length=128)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/",
) -> Response:
    check_csrf(request, csrf)
    throttle: LoginThrottle = request.app.state.login_throttle
    client = request.client.host if request.client else "unknown"
    keys = (f"user:{name}", f"client:{client}")
    now = time.monotonic()
    wait = max(throttle.retry_after(key, now) for key in keys)
    target = _safe_next(next)
    if wait > 0:
        log.warning("login_throttled", retry_after=round(wait))
        message = f"Too many failed logins: try again in {int(wait) + 1} seconds."
        return _login_page(request, target, message, 429, {"Retry-After": str(int(wait) + 1)})
    user = request.app.state.users.authenticate(name, password)
    if user is None:
        for key in keys:
            throttle.failed(key, now)
        log.info("login_failed")
        return _login_page(request, target, "Unknown user or wrong password.", 401)
    # Only the name's count is forgiven: one valid account must not reset an address's count.
    throttle.succeeded(keys[0])
    stamp = request.app.state.users.session_stamp(user.name)
    if stamp is None:  # removed between the password check and now
        return _login_page(request, target, "Unknown user or wrong password.", 401)
    request.session.clear()  # a new session id for the new identity: no fixation
    request.session["user"] = user.name
    request.session["uid"], request.session["sv"] = stamp
    request.session["csrf"] = secrets.token_urlsafe(32)
    log.info("login", user=user.name, role=user.role.value)
    return RedirectResponse(target, status_code=303)


@router.post("/logout")
def logout(request: Request, csrf: Annotated[str, Form(max_length=128)] = "") -> Response:
    check_csrf(request, csrf)
    name = request.session.get("user")
    if isinstance(name, str) and current_user_or_none(request) is not None:
        # Ends this user's every session, not only this cookie: a copy of it replayed later fails.
        request.app.state.users.end_sessions(name)
    request.session.clear()
    return RedirectResponse("/login", status_code=303)


def current_user_or_none(request: Request) -> User | None:
    """The user of this request, or None when nobody is logged in."""
    try:
        return current_user(request)
    except LoginRequiredError:
        return None
