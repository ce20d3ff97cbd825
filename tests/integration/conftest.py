"""Integration fixtures: a real single-node Kafka broker started by the test run itself, and the
rules service as a real process.

Set TRIALGUARD_TEST_BOOTSTRAP=host:port to use a broker you already run instead (the fault suite
always starts a broker of its own, since it kills it).
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from services.kafka import KafkaSettings

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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


class Broker:
    """A single-node Kafka of the test's own (scripts/kafka.sh), on free ports, in ``folder``.

    ``properties`` are extra server.properties lines.
    """

    def __init__(self, folder: Path, properties: str = "", port: int | None = None) -> None:
        self.port = port or _free_port()
        self.env = {
            **os.environ,
            "KAFKA_PORT": str(self.port),
            "KAFKA_CONTROLLER_PORT": str(_free_port()),
            "KAFKA_DIR": str(folder),
            "KAFKA_EXTRA_PROPERTIES": properties,
        }
        self.pidfile = folder / "kafka.pid"

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def up(self) -> None:
        """Start it (on the same data as before, if any) and wait until it serves."""
        subprocess.run([str(ROOT / "scripts" / "kafka.sh"), "up"], env=self.env, check=True)

    def down(self) -> None:
        subprocess.run([str(ROOT / "scripts" / "kafka.sh"), "down"], env=self.env, check=False)

    def kill(self) -> None:
        """SIGKILL the broker process, as a crash would; wait until it is gone."""
        pid = int(self.pidfile.read_text())
        os.kill(pid, signal.SIGKILL)  # not our child (kafka.sh detaches it): init reaps it
        deadline = time.monotonic() + 30
        while _exists(pid):
            assert time.monotonic() < deadline, f"broker {pid} is still there 30 s after SIGKILL"
            time.sleep(0.05)


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if given := os.environ.get("TRIALGUARD_TEST_BOOTSTRAP"):
        yield given
        return
    broker = Broker(tmp_path_factory.mktemp("kafka"))
    broker.up()
    try:
        yield broker.bootstrap
    finally:
        broker.down()


@pytest.fixture
def settings(kafka_bootstrap: str) -> KafkaSettings:
    """The example study's topics, in a namespace of this test's own."""
    return KafkaSettings(kafka_bootstrap, "NCT06904729", f"test-{uuid.uuid4().hex[:10]}")


class ServiceProcess:
    """``trialguard rules serve`` as a child process of the test, logging to a file."""

    def __init__(self, settings: KafkaSettings, log_path: Path, env: dict[str, str] | None = None) -> None:
        self.settings = settings
        self.log_path = log_path
        self.env = {**os.environ, **(env or {})}
        self.http_port = _free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> ServiceProcess:
        assert self.proc is None or self.proc.poll() is not None, "already running"
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "services.cli",
                    "rules",
                    "serve",
                    "--bootstrap-servers",
                    self.settings.bootstrap_servers,
                    "--study",
                    self.settings.study_id,
                    "--namespace",
                    self.settings.namespace,
                    "--http-port",
                    str(self.http_port),
                ],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return self

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> int:
        """Signal the process and wait for it to exit; returns its exit code."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout=60)

    def check_alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"rules service exited with {self.proc.returncode}:\n{self.log()[-3000:]}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


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
