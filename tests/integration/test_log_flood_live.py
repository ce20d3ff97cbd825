"""With its broker stopped, the rules service writes one line per kind of library error per
interval (each carrying how many were dropped), not the thousand a second aiokafka logs; and
stopped (SIGTERM) while the broker is still away, it exits cleanly.

The test runs on a broker of its own (it stops it) and shortens the interval to a second
(TRIALGUARD_LOG_REPEAT_INTERVAL_MS), waiting until several intervals have passed in the log.
"""

from __future__ import annotations

import itertools
import json
import re
import signal
from collections import defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from services.kafka import KafkaSettings
from services.log_limits import REPEAT_INTERVAL_ENV
from tests.integration.conftest import Broker, ServiceProcess
from tests.integration.kafka_support import http_get, wait_for

pytestmark = pytest.mark.integration

INTERVAL_MS = 1_000
WINDOWS = 3
"""Intervals to wait for: this many lines of one kind carrying a count of repeats."""


def _lines(service: ServiceProcess) -> list[dict[str, Any]]:
    return [json.loads(line) for line in service.log().splitlines() if line.startswith("{")]


def _kind(line: dict[str, Any]) -> tuple[str, str, str]:
    return line["event"], line["logger"], re.sub(r"\d+", "#", line["message"])


async def test_a_broker_outage_writes_a_line_per_kind_per_interval_and_a_stop_then_is_clean(tmp_path: Path) -> None:
    broker = Broker(tmp_path / "kafka")
    broker.up()
    settings = KafkaSettings(broker.bootstrap, "NCT06904729", "log-flood")
    service = ServiceProcess(settings, tmp_path / "rules.log", env={REPEAT_INTERVAL_ENV: str(INTERVAL_MS)}).start()

    async def health_is(status: str) -> bool:
        service.check_alive()
        try:
            _, body = await http_get(service.http_port, "/health")
        except OSError:
            return False
        return bool(json.loads(body)["status"] == status)

    async def windows_passed() -> bool:
        service.check_alive()
        counted = [line for line in _lines(service) if line.get("repeated") and line["event"] == "library_error"]
        per_kind: defaultdict[tuple[str, str, str], int] = defaultdict(int)
        for line in counted:
            per_kind[_kind(line)] += 1
        return max(per_kind.values(), default=0) >= WINDOWS

    try:
        await wait_for(lambda: health_is("ready"), "the service to be ready")
        broker.down()
        await wait_for(lambda: health_is("waiting_for_broker"), "/health to notice the broker is gone")
        await wait_for(windows_passed, f"{WINDOWS} intervals of repeated library errors")
        # An operator stopping it during the outage: a clean stop, not a traceback and exit 1.
        assert service.stop(signal.SIGTERM) == 0, service.log()[-3000:]
    finally:
        if service.proc is not None and service.proc.poll() is None:
            service.stop(signal.SIGKILL)
        broker.down()

    written: dict[tuple[str, str, str], list[datetime]] = defaultdict(list)
    dropped = 0
    for line in _lines(service):
        if line["event"].startswith("library_"):
            written[_kind(line)].append(datetime.fromisoformat(line["timestamp"]))
            dropped += line.get("repeated", 0)
    assert dropped > 10 * WINDOWS, f"so few repeats ({dropped}) that nothing was limited: {dict(written)}"
    for kind, times in written.items():
        # One line per kind per interval: the process's own timestamps (wall clock, its windows on
        # the monotonic one; a tenth of slack for the difference).
        gaps = [(later - earlier).total_seconds() for earlier, later in itertools.pairwise(times)]
        assert all(gap >= 0.9 * INTERVAL_MS / 1000 for gap in gaps), f"{kind} written {len(times)} times: {gaps}"
