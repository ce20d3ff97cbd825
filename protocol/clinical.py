"""Clinical calculators (pure). Sources in shared/reference/clinical.md."""

from __future__ import annotations

import datetime as dt


def age_in_years(birth_date: dt.date, on: dt.date) -> int:
    """Completed years of age on a date (the birthday itself counts as the new year)."""
    had_birthday = (on.month, on.day) >= (birth_date.month, birth_date.day)
    return on.year - birth_date.year - (0 if had_birthday else 1)
