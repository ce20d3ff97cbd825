"""Integration fixtures: the rules service as a real process, on the broker of the run
(``kafka_bootstrap`` and ``settings`` come from tests/conftest.py; the processes from
tests/processes.py). The fault suite starts a broker of its own, since it kills it.
"""

from __future__ import annotations

import os
import random
import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from services.kafka import KafkaSettings
from tests.processes import ROOT, Broker, ServiceProcess, free_port

__all__ = ["REPORT", "ROOT", "Broker", "ServiceProcess", "free_port", "seed_for"]


REPORT: list[str] = []
"""Lines a test wants in the run's summary (seeds, counts), printed by pytest_terminal_summary."""


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if REPORT:
        terminalreporter.section("integration: seeds and counts")
        for line in REPORT:
            terminalreporter.write_line(line)


def seed_for(name: str) -> int:
    """A seed for a randomised suite, printed in the run's summary so that a failure can be
    replayed with TRIALGUARD_FAULT_SEED=N."""
    seed = int(os.environ.get("TRIALGUARD_FAULT_SEED") or random.SystemRandom().randrange(2**31))
    REPORT.append(f"{name}: seed {seed} (replay with TRIALGUARD_FAULT_SEED={seed})")
    print(f"{name}: seed {seed}")  # shown with a failure, too
    return seed


@pytest.fixture
def rules_service(settings: KafkaSettings, tmp_path: Path) -> Iterator[Callable[[], ServiceProcess]]:
    """Start the rules service for this test's topics; every process started is ended after the test."""
    started: list[ServiceProcess] = []

    def start() -> ServiceProcess:
        service = ServiceProcess(settings, tmp_path / "rules-service.log")
        started.append(service.start())
        return service

    yield start
    for service in started:
        if service.proc is not None and service.proc.poll() is None:
            service.stop(signal.SIGKILL)
