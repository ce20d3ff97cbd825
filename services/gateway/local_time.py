"""Times as laboratories write them: read in the sending source's registered time zone.

Most HL7 v2 feeds, and some FHIR servers, send local times without a UTC offset, and date-only
times (a FHIR ``effectiveDateTime`` of ``2025-11-03``, an HL7 ``20251103``). The contract needs an
offset (``occurred_at`` is an aware time: the protocol's dates are the site's local dates). The
gateway does what interface engines do by default: it reads such a time in the time zone the
source is registered with (an IANA name, ``sources add --time-zone Asia/Shanghai``), with the
zone's daylight-saving rules. A local time that happens twice (the hour the clocks go back) or
never (the hour they go forward) is refused with the reason: guessing would move a specimen time
by an hour. A date-only time is read as the start of that local date (00:00 in the zone): the
date, which is what a date-only result states and what every protocol window counts in, stays
the same.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from functools import cache


class LocalTimeError(ValueError):
    """A time that cannot be placed on the time line; the message says why, for the sender."""


@cache
def time_zone(name: str) -> zoneinfo.ZoneInfo:
    """The IANA time zone of this name.

    Raises:
        LocalTimeError: not a time zone name the tz database knows.
    """
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise LocalTimeError(f"{name[:80]!r} is not an IANA time zone name (such as Asia/Shanghai)") from None


def check_time_zone(name: str) -> str:
    """``name`` when the tz database knows it.

    Raises:
        LocalTimeError: otherwise.
    """
    time_zone(name)
    return name


def localize(value: dt.datetime, zone: str | None) -> dt.datetime:
    """An aware time: ``value`` itself when it has an offset, else read in ``zone``.

    Raises:
        LocalTimeError: no offset and no zone registered for the source, or a local time that
            happens twice or never in the zone (daylight saving).
    """
    if value.tzinfo is not None and value.utcoffset() is not None:
        return value
    if zone is None:
        raise LocalTimeError(
            "has no UTC offset, and the source has no time zone to read it in "
            "(register one: trialguard sources set NAME --time-zone AREA/CITY)"
        )
    tz = time_zone(zone)
    earlier, later = value.replace(tzinfo=tz, fold=0), value.replace(tzinfo=tz, fold=1)
    if earlier.astimezone(dt.UTC).astimezone(tz).replace(tzinfo=None) != value:
        raise LocalTimeError(f"{value.isoformat()} does not exist in {zone} (clocks go forward): give its UTC offset")
    if earlier.utcoffset() != later.utcoffset():
        raise LocalTimeError(f"{value.isoformat()} happens twice in {zone} (clocks go back): give its UTC offset")
    return earlier


def start_of_day(day: dt.date, zone: str | None) -> dt.datetime:
    """A date-only time: 00:00 of that local date in ``zone`` (the first instant of the day, where
    daylight saving skips midnight).

    Raises:
        LocalTimeError: no zone registered for the source.
    """
    if zone is None:
        raise LocalTimeError(
            "is a date without a time, and the source has no time zone to read it in "
            "(register one: trialguard sources set NAME --time-zone AREA/CITY)"
        )
    tz = time_zone(zone)
    midnight = dt.datetime.combine(day, dt.time(), tz)
    if midnight.astimezone(dt.UTC).astimezone(tz).replace(tzinfo=None) != midnight.replace(tzinfo=None):
        # Midnight does not exist there that day (a DST change at 00:00): the day starts later.
        midnight = (midnight.astimezone(dt.UTC)).astimezone(tz)
    return midnight
