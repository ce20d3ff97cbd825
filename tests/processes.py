"""Real processes for the tests that need them: a Kafka broker of the test run's own, and the
rules service as a child process. Shared by tests/integration and tests/e2e."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Self

from pydantic import SecretStr

from events import Topics
from services.kafka import KafkaSettings
from services.kafka_security import KafkaSecurity, SaslMechanism, SecurityProtocol

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Broker:
    """A single-node Kafka of the test's own (scripts/kafka.sh), on free ports, in ``folder``.

    ``properties`` are extra server.properties lines. With ``secure``, the broker takes SASL/SCRAM
    only and grants the ACLs of ``secure``'s topics (a study's namespace and id) to the users
    rules, dashboard, gateway and operator (scripts/kafka.sh secure-up); :meth:`settings_as`
    gives the settings of one of them.
    """

    def __init__(
        self, folder: Path, properties: str = "", port: int | None = None, secure: Topics | None = None
    ) -> None:
        self.port = port or free_port()
        self.folder = folder
        self.secure = secure
        self.env = {
            **os.environ,
            "KAFKA_PORT": str(self.port),
            "KAFKA_CONTROLLER_PORT": str(free_port()),
            "KAFKA_DIR": str(folder),
            "KAFKA_EXTRA_PROPERTIES": properties,
        }
        if secure is not None:
            self.env |= {
                "KAFKA_SECURE": "1",
                "TRIALGUARD_TOPIC_NAMESPACE": secure.namespace,
                "TRIALGUARD_STUDY_ID": secure.study_id,
            }
        self.pidfile = folder / "kafka.pid"

    def password_file(self, user: str) -> Path:
        """The file holding ``user``'s SCRAM password (secured broker only)."""
        return self.folder / "secrets" / f"{user}.password"

    def settings_as(self, user: str, password: str | None = None) -> KafkaSettings:
        """Settings of the secured broker's study, authenticated as ``user`` (its own password
        unless ``password`` is given)."""
        assert self.secure is not None, "settings_as is for a secured broker"
        secret = self.password_file(user).read_text().strip() if password is None else password
        security = KafkaSecurity(SecurityProtocol.SASL_PLAINTEXT, SaslMechanism.SCRAM_SHA_512, user, SecretStr(secret))
        return KafkaSettings(self.bootstrap, self.secure.study_id, self.secure.namespace, security=security)

    def security_env(self, user: str) -> dict[str, str]:
        """The environment that makes a TrialGuard command connect as ``user`` (password from its file)."""
        return {
            "TRIALGUARD_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
            "TRIALGUARD_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
            "TRIALGUARD_KAFKA_USERNAME": user,
            "TRIALGUARD_KAFKA_PASSWORD_FILE": str(self.password_file(user)),
        }

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


def cli_command(settings: KafkaSettings, *command: str) -> list[str]:
    """``trialguard COMMAND…`` for this interpreter, on ``settings``' broker, study and namespace."""
    return [
        sys.executable,
        "-m",
        "services.cli",
        *command,
        "--bootstrap-servers",
        settings.bootstrap_servers,
        "--study",
        settings.study_id,
        "--namespace",
        settings.namespace,
    ]


class ServiceProcess:
    """``trialguard rules serve`` as a child process of the test, logging to a file."""

    def __init__(
        self,
        settings: KafkaSettings,
        log_path: Path,
        env: dict[str, str] | None = None,
        also_studies: tuple[str, ...] = (),
    ) -> None:
        self.settings = settings
        self.log_path = log_path
        self.env = {**os.environ, **(env or {})}
        self.http_port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.also_studies = also_studies
        """Studies served beside ``settings.study_id`` by the same process (``--study``, repeated)."""

    def start(self) -> ServiceProcess:
        assert self.proc is None or self.proc.poll() is not None, "already running"
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [
                    *cli_command(self.settings, "rules", "serve"),
                    *(option for study in self.also_studies for option in ("--study", study)),
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


class HttpServiceProcess:
    """A TrialGuard web process (``trialguard <command> serve``) as a child process on a free
    loopback port, started when its ``/health`` answers 200."""

    command: tuple[str, ...] = ()
    """The subcommand, e.g. ("dashboard", "serve")."""

    def __init__(self, settings: KafkaSettings, data_dir: Path, log_path: Path) -> None:
        self.settings = settings
        self.data_dir = data_dir
        self.log_path = log_path
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def options(self) -> list[str]:
        """The command's own options."""
        return ["--port", str(self.port), "--data-dir", str(self.data_dir)]

    def start(self, seconds: float = 90) -> Self:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [*cli_command(self.settings, *self.command), *self.options()],
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + seconds
        while not self._healthy():
            if time.monotonic() > deadline:
                raise AssertionError(f"{' '.join(self.command)}: /health did not answer 200:\n{self.log()[-3000:]}")
            time.sleep(0.2)
        return self

    def _healthy(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"{' '.join(self.command)} exited with {self.proc.returncode}:\n{self.log()[-3000:]}")
        try:
            with urllib.request.urlopen(self.url + "/health", timeout=5) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return False

    def stop(self) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=60)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
