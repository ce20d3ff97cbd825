"""SDTM DV from the broker equals SDTM DV from an offline replay of the same events."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable
from pathlib import Path

import pyreadstat
import pytest

from services.audit.sdtm_cli import run
from services.kafka import KafkaSettings
from tests.builders import EXAMPLE_EVENTS, example_lines
from tests.integration.conftest import ServiceProcess
from tests.integration.kafka_support import keyed, publish, wait_until_consumed

pytestmark = pytest.mark.integration


async def test_export_from_the_broker_equals_the_offline_export(
    settings: KafkaSettings, rules_service: Callable[[], ServiceProcess], tmp_path: Path
) -> None:
    service = rules_service()
    await publish(settings, keyed(example_lines()))
    await wait_until_consumed(settings, service.check_alive)

    err = io.StringIO()
    # run() reads the broker with asyncio.run of its own: give it a thread, away from this loop.
    status = await asyncio.to_thread(run, str(tmp_path / "live.xpt"), None, "xpt", None, settings, stderr=err)
    assert status == 0, err.getvalue()
    assert run(str(tmp_path / "offline.xpt"), None, "xpt", str(EXAMPLE_EVENTS), settings, stderr=err) == 0

    live, _ = pyreadstat.read_xport(str(tmp_path / "live.xpt"))
    offline, _ = pyreadstat.read_xport(str(tmp_path / "offline.xpt"))
    assert list(live["DVSPID"]) == ["DOSE-01", "CONSENT-01"]
    assert live.equals(offline)
    live_supp, _ = pyreadstat.read_xport(str(tmp_path / "supplive.xpt"))
    offline_supp, _ = pyreadstat.read_xport(str(tmp_path / "suppoffline.xpt"))
    assert live_supp.equals(offline_supp)
    assert len(live_supp) == 4
