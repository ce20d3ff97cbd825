"""Who is asking: the login form, the signed session cookie, bearer tokens, CSRF and throttling.

Pages use the session cookie (signed by Starlette's SessionMiddleware: HttpOnly, SameSite=strict);
the API takes the same cookie or ``Authorization: Bearer <token>`` (from ``trialguard users
token``). Every state-changing form carries the session's CSRF token; a cookie-authenticated API
call that changes state sends it in ``X-CSRF-Token``.

Logins are throttled (``services.dashboard.throttle``): each attempt is reserved against the
client's address and the user name before the password is checked, and refused with 429 and
``Retry-After`` while either must wait. A browser that has logged in as a name before carries a
signed device cookie; its attempts at that name count on a key of their own, so that strangers'
wrong guesses never delay the name's owner there. Failed and throttled logins are logged with the
name (when it is a possible user name) and the client's address, never the password.
"""

from __future__ import annotations

import secrets
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import RedirectResponse, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer

from services.dashboard.roles import User
from services.dashboard.study_scope import scope_user
from services.dashboard.throttle import LoginThrottle
from services.dashboard.users import NAME_PATTERN, UserStore

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
    """The user of this request, from a bearer token or the session cookie, as the request's
    study sees them (``study_scope.scope_user``: their role and site there).

    Raises:
        LoginRequiredError: neither names a known user.
        HTTPException: 404 for a study the user has no role in (or that is not served).
    """
    user = authenticated_user(request)
    return scope_user(request, user, by_token=request.state.by_token)


def authenticated_user(request: Request) -> User:
    """The user of this request, from a bearer token or the session cookie, with their roles in
    every study (no study chosen yet).

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


DEVICE_COOKIE = "trialguard_device"
DEVICE_DAYS = 90
DEVICE_NAMES = 5
"""Names a device cookie remembers at most (a shared workstation), the latest kept."""


def _devices(request: Request) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(request.app.state.settings.session_key(), salt="trialguard.device")


def _device(request: Request) -> dict[str, Any]:
    """The device cookie's content: ``{"id": …, "names": [...]}``, or a new one when it is
    missing, forged or older than ``DEVICE_DAYS``."""
    raw = request.cookies.get(DEVICE_COOKIE, "")
    try:
        device = _devices(request).loads(raw, max_age=DEVICE_DAYS * 86400) if raw else None
    except BadSignature:
        device = None
    ok = isinstance(device, dict) and isinstance(device.get("id"), str) and isinstance(device.get("names"), list)
    return device if ok else {"id": secrets.token_urlsafe(16), "names": []}  # type: ignore[return-value]


def _loggable(name: str) -> str:
    # Only what could be a user name reaches the log: not a password typed in the wrong box with
    # spaces, nor control characters; a refused name is logged as such.
    return name if NAME_PATTERN.fullmatch(name) else "<not a user name>"


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
    device = _device(request)
    known_device = name in device["names"]
    name_key = f"device:{name}:{device['id']}" if known_device else f"user:{name}"
    address_key = f"client:{client}"
    target = _safe_next(next)
    # Reserved before the password is checked: concurrent guesses cannot all be verified.
    wait = throttle.reserve([name_key, address_key])
    if wait > 0:
        seconds = int(wait) + 1
        log.warning("login_throttled", user=_loggable(name), client=client, retry_after=seconds)
        message = f"Too many login attempts: try again in {seconds} seconds."
        return _login_page(request, target, message, 429, {"Retry-After": str(seconds)})
    user = request.app.state.users.authenticate(name, password)
    if user is None:
        log.warning("login_failed", user=_loggable(name), client=client, known_device=known_device)
        return _login_page(request, target, "Unknown user or wrong password.", 401)
    throttle.succeeded(name_key, refunded=[address_key])
    stamp = request.app.state.users.session_stamp(user.name)
    if stamp is None:  # removed between the password check and now
        return _login_page(request, target, "Unknown user or wrong password.", 401)
    request.session.clear()  # a new session id for the new identity: no fixation
    request.session["user"] = user.name
    request.session["uid"], request.session["sv"] = stamp
    request.session["csrf"] = secrets.token_urlsafe(32)
    log.info("login", user=user.name, studies=len(user.studies), client=client)
    response = RedirectResponse(target, status_code=303)
    others = [n for n in device["names"] if n != user.name]
    names = [*others[len(others) - DEVICE_NAMES + 1 :], user.name]
    response.set_cookie(
        DEVICE_COOKIE,
        _devices(request).dumps({"id": device["id"], "names": names}),
        max_age=DEVICE_DAYS * 86400,
        httponly=True,
        samesite="strict",
        secure=request.app.state.settings.secure_cookies,
    )
    return response


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
    """The user of this request (every study), or None when nobody is logged in."""
    try:
        return authenticated_user(request)
    except LoginRequiredError:
        return None
