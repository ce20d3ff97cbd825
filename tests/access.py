"""Access-log recorders for tests: one that keeps what Kafka would have taken, one whose Kafka is away."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from contracts import AccessChanged
from services.access_log import AccessLogError, AccessRecorder, utc_now


def recording(
    events: list[AccessChanged], operator: str = "ops", clock: Callable[[], dt.datetime] = utc_now
) -> AccessRecorder:
    """A CLI recorder for OS user ``operator`` whose published events land in ``events``."""
    return AccessRecorder("NCT06904729", operator, "cli", events.append, clock)


def broker_away(operator: str = "ops") -> AccessRecorder:
    """A recorder whose Kafka never takes anything."""

    def refuse(event: AccessChanged) -> None:
        raise AccessLogError("the access log did not take the change: nothing was changed")

    return AccessRecorder("NCT06904729", operator, "cli", refuse)
