"""The user's display preferences: which clock times are shown in (see ``times``)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from services.dashboard.auth import CurrentUser, _safe_next
from services.dashboard.times import COOKIE, MODES

router = APIRouter(include_in_schema=False)

YEAR_SECONDS = 365 * 24 * 3600


@router.get("/preferences/time")
def choose_time(request: Request, _: CurrentUser, zone: str = "site", next: str = "/findings") -> Response:
    """Remember ``zone`` ("site" or "utc") in a cookie and go back to ``next``."""
    response = RedirectResponse(_safe_next(next), status_code=303)  # never off site
    response.set_cookie(
        COOKIE,
        zone if zone in MODES else "site",
        max_age=YEAR_SECONDS,
        httponly=True,
        samesite="strict",
        secure=request.app.state.settings.secure_cookies,
    )
    return response
