"""Local times of laboratories read in the source's registered zone: table-driven, DST included."""

from __future__ import annotations

import datetime as dt

import pytest

from services.gateway.local_time import LocalTimeError, check_time_zone, localize, start_of_day

NAIVE = dt.datetime(2025, 11, 3, 9, 15)


@pytest.mark.parametrize(
    ("value", "zone", "expected"),
    [
        (NAIVE, "Asia/Shanghai", "2025-11-03T09:15:00+08:00"),
        (NAIVE.replace(tzinfo=dt.timezone(dt.timedelta(hours=-5))), None, "2025-11-03T09:15:00-05:00"),
        (NAIVE.replace(tzinfo=dt.timezone(dt.timedelta(hours=-5))), "Asia/Shanghai", "2025-11-03T09:15:00-05:00"),
        (dt.datetime(2025, 7, 1, 12, 0), "America/New_York", "2025-07-01T12:00:00-04:00"),
        (dt.datetime(2025, 12, 1, 12, 0), "America/New_York", "2025-12-01T12:00:00-05:00"),
        (dt.datetime(2025, 3, 30, 1, 59), "Europe/Berlin", "2025-03-30T01:59:00+01:00"),
        (dt.datetime(2025, 3, 30, 3, 0), "Europe/Berlin", "2025-03-30T03:00:00+02:00"),
    ],
)
def test_a_time_is_read_in_the_sources_zone_when_it_has_no_offset(
    value: dt.datetime, zone: str | None, expected: str
) -> None:
    assert localize(value, zone).isoformat() == expected


@pytest.mark.parametrize(
    ("value", "zone", "reason"),
    [
        (NAIVE, None, "has no UTC offset, and the source has no time zone"),
        (dt.datetime(2025, 3, 30, 2, 30), "Europe/Berlin", "does not exist in Europe/Berlin (clocks go forward)"),
        (dt.datetime(2025, 10, 26, 2, 30), "Europe/Berlin", "happens twice in Europe/Berlin (clocks go back)"),
        (dt.datetime(2025, 11, 2, 1, 30), "America/New_York", "happens twice in America/New_York"),
        (NAIVE, "Mars/Olympus_Mons", "'Mars/Olympus_Mons' is not an IANA time zone name"),
    ],
)
def test_a_time_that_cannot_be_placed_is_refused_with_the_reason(
    value: dt.datetime, zone: str | None, reason: str
) -> None:
    with pytest.raises(LocalTimeError, match=reason.replace("(", r"\(").replace(")", r"\)")):
        localize(value, zone)


def test_a_date_only_time_is_the_start_of_that_local_date() -> None:
    assert start_of_day(dt.date(2025, 11, 3), "Asia/Shanghai").isoformat() == "2025-11-03T00:00:00+08:00"
    # Santiago moved its clocks forward at midnight: 2024-09-08 began at 01:00.
    assert start_of_day(dt.date(2024, 9, 8), "America/Santiago").isoformat() == "2024-09-08T01:00:00-03:00"
    with pytest.raises(LocalTimeError, match="is a date without a time"):
        start_of_day(dt.date(2025, 11, 3), None)


def test_only_names_of_the_tz_database_are_zones() -> None:
    assert check_time_zone("Asia/Shanghai") == "Asia/Shanghai"
    for bad in ("+08:00", "CST8", "", "../etc/passwd"):
        with pytest.raises(LocalTimeError):
            check_time_zone(bad)
