"""One rule for every time the dashboard shows, as Jinja filters.

- **Event times** (when something happened to a participant) are shown in the site's local time
  with its UTC offset, as the event carried it: ``2024-02-09 08:30 (UTC+08:00)``. The rules count
  days by each event's own calendar date, so this is the time the findings speak of.
- **System times** (raised, reviewed, recorded, changed) are shown in UTC: ``2024-02-09 00:30:12 UTC``.

A user may ask for every time in UTC: the ``time`` query parameter (``?time=utc`` or
``?time=site``) sets the ``trialguard_time`` cookie for later pages (``/preferences/time``
does the same from the switch in the header). Each value is a ``<time datetime="…">`` element
whose text names its zone, so a time is never shown without saying which clock it is.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from jinja2 import pass_context
from markupsafe import Markup
from starlette.requests import Request

COOKIE = "trialguard_time"
MODES = ("site", "utc")


def time_mode(request: Request | None) -> str:
    """``"utc"`` when the user asked for UTC (query first, then cookie), else ``"site"``."""
    if request is None:
        return "site"
    asked = request.query_params.get("time") or request.cookies.get(COOKIE, "")
    return asked if asked in MODES else "site"


def parse(value: Any) -> dt.datetime | None:
    """An aware datetime from an ISO text or a datetime; None for anything else (shown as is)."""
    if isinstance(value, dt.datetime):
        at = value
    elif isinstance(value, str) and value:
        try:
            at = dt.datetime.fromisoformat(value)
        except ValueError:
            return None
    else:
        return None
    return at if at.tzinfo is not None else at.replace(tzinfo=dt.UTC)


def event_time_text(value: Any, mode: str = "site") -> str:
    """An event time as text: site local time with its offset, or UTC when ``mode`` is ``"utc"``."""
    at = parse(value)
    if at is None:
        return "" if value is None else str(value)
    if mode == "utc":
        return at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    offset = at.strftime("%z")
    return f"{at:%Y-%m-%d %H:%M} (UTC{offset[:3]}:{offset[3:]})"


def system_time_text(value: Any) -> str:
    """A system time as text, always in UTC."""
    at = parse(value)
    if at is None:
        return "" if value is None else str(value)
    return at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _element(value: Any, text: str) -> Markup:
    at = parse(value)
    if at is None:
        return Markup("{}").format(text)
    return Markup('<time datetime="{}">{}</time>').format(at.isoformat(), text)


@pass_context
def event_time(context: Any, value: Any) -> Markup:
    """Jinja filter ``event_time``: site local time with its offset (or UTC, as the user asked)."""
    return _element(value, event_time_text(value, time_mode(context.get("request"))))


def system_time(value: Any) -> Markup:
    """Jinja filter ``system_time``: a time the system recorded, in UTC."""
    return _element(value, system_time_text(value))


def install(env: Any) -> None:
    """Register the filters and the ``time_mode`` global on a Jinja environment."""
    env.filters["event_time"] = event_time
    env.filters["system_time"] = system_time
    env.globals["time_mode"] = time_mode
