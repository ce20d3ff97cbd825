"""The user's display preferences: which clock times are shown in (see ``times``)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from services.dashboard.auth import CurrentUser
from services.dashboard.times import COOKIE, MODES

router = APIRouter(include_in_schema=False)

YEAR_SECONDS = 365 * 24 * 3600


def local_path(target: str) -> str:
    """``target`` when it is a path on this site, else ``/findings``: never a redirect elsewhere.

    ``//host/…`` and ``/\\host/…`` are other sites to a browser, as is anything with a scheme.
    """
    if not target.startswith("/") or target.startswith(("//", "/\\")) or any(c in target for c in "\r\n\t"):
        return "/findings"
    return target


@router.get("/preferences/time")
def choose_time(request: Request, _: CurrentUser, zone: str = "site", next: str = "/findings") -> Response:
    """Remember ``zone`` ("site" or "utc") in a cookie and go back to ``next``."""
    response = RedirectResponse(local_path(next), status_code=303)
    response.set_cookie(
        COOKIE,
        zone if zone in MODES else "site",
        max_age=YEAR_SECONDS,
        httponly=True,
        samesite="strict",
        secure=request.app.state.settings.secure_cookies,
    )
    return response
