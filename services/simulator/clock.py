"""The simulated study's calendar: day 0, the cut-off, and event times as the sites' ISO-8601 text.

Event times are whole minutes since the study start in the sites' local time (+08:00); the text
of dates and clock times is cached because every event line carries two timestamps.
"""

from __future__ import annotations

import datetime as dt

STUDY_ID = "NCT06904729"
STUDY_START = dt.date(2023, 3, 6)
"""Day 0 of the simulated study (a Monday: the scheduler's weekly watermark falls on day % 7 == 0)."""
RECRUITMENT_DAYS = 900
"""Consent dates are spread over this many days from the study start."""
CUTOFF_DAY = 1092
"""The data cut-off (156 weeks after the start, a Monday): nothing happens after it; the last
watermark of every participant still active is published at its midnight."""
TICK_EVERY_DAYS = 7
"""Days between a participant's ``ClockTicked`` watermarks."""
DAY = 1440
"""Minutes per day: event times are whole minutes since the study start, local time (+08:00)."""
OFFSET = "+08:00"

_DATES: dict[int, str] = {}


def date_text(day: int) -> str:
    """The ISO-8601 date of a study day."""
    text = _DATES.get(day)
    if text is None:
        text = _DATES[day] = (STUDY_START + dt.timedelta(days=day)).isoformat()
    return text


_CLOCK = [f"T{m // 60:02d}:{m % 60:02d}:" for m in range(DAY)]
_SECONDS = [f"{s:02d}{OFFSET}" for s in range(60)]


def stamp(seconds: int) -> str:
    """An ISO-8601 timestamp with the site's offset, from seconds since the study start."""
    day, rest = divmod(seconds, 86400)
    text = _DATES.get(day)
    if text is None:
        text = date_text(day)
    return text + _CLOCK[rest // 60] + _SECONDS[rest % 60]


def as_date(day: int) -> dt.date:
    """The calendar date of a study day."""
    return STUDY_START + dt.timedelta(days=day)


def completed_years(birth: dt.date, on: dt.date) -> int:
    """Completed years of age on a date."""
    return on.year - birth.year - (0 if (on.month, on.day) >= (birth.month, birth.day) else 1)
