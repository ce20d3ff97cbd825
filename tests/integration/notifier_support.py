"""A real webhook receiver and a real SMTP server for the notifier tests, and the notifier as a
child process. Both servers run in threads of their own on 127.0.0.1 and free ports, so they
answer while the test waits, and the receiver can be stopped and started again on its port."""

from __future__ import annotations

import email
import json
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from argon2 import PasswordHasher
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from services.dashboard.users import UserStore
from services.kafka import KafkaSettings
from services.notifier.signing import DELIVERY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
from tests.processes import ROOT, HttpServiceProcess, free_port


@dataclass(frozen=True)
class Received:
    """One webhook request as the receiver saw it."""

    hook: str
    delivery_id: str
    verified: bool
    body: dict[str, Any]
    raw: bytes
    timestamp: str
    signature: str


@dataclass
class WebhookReceiver:
    """``POST /hook/{name}`` answers 200 and records the request, checking its signature with the
    secret registered for ``name``; ``POST /fail/{name}`` records it and answers 500."""

    port: int = field(default_factory=free_port)
    secrets: dict[str, str] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    _server: uvicorn.Server | None = None
    _thread: threading.Thread | None = None

    def url(self, name: str, *, failing: bool = False) -> str:
        return f"http://127.0.0.1:{self.port}/{'fail' if failing else 'hook'}/{name}"

    async def _hook(self, request: Request) -> Response:
        name = request.path_params["name"]
        body = await request.body()
        timestamp, signed = request.headers.get(TIMESTAMP_HEADER, ""), request.headers.get(SIGNATURE_HEADER, "")
        verified = verify(self.secrets.get(name, ""), timestamp, signed, body)
        delivery_id = request.headers.get(DELIVERY_HEADER, "")
        self.received.append(Received(name, delivery_id, verified, json.loads(body), body, timestamp, signed))
        return Response(status_code=500 if request.url.path.startswith("/fail/") else 200)

    def start(self) -> None:
        app = Starlette(
            routes=[
                Route("/hook/{name}", self._hook, methods=["POST"]),
                Route("/fail/{name}", self._hook, methods=["POST"]),
            ]
        )
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="webhook-receiver", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            assert self._thread.is_alive(), f"the webhook receiver could not start on port {self.port}"
            assert time.monotonic() < deadline, "the webhook receiver did not start in 30 s"
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop serving (requests in flight are answered first); the port refuses connections."""
        assert self._server is not None
        assert self._thread is not None
        self._server.should_exit = True
        self._thread.join(timeout=30)
        assert not self._thread.is_alive(), "the webhook receiver did not stop"

    def delivery_ids(self, name: str) -> Counter[str]:
        return Counter(r.delivery_id for r in list(self.received) if r.hook == name)


class _Mailbox:
    def __init__(self) -> None:
        self.messages: list[tuple[tuple[str, ...], email.message.Message]] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802 (aiosmtpd's name)
        content = envelope.content if isinstance(envelope.content, bytes) else str(envelope.content).encode()
        self.messages.append((tuple(envelope.rcpt_tos), email.message_from_bytes(content)))
        return "250 Message accepted for delivery"


class SmtpServer:
    """aiosmtpd on 127.0.0.1 and a free port, keeping every message it accepts."""

    def __init__(self) -> None:
        self.mailbox = _Mailbox()
        self.port = free_port()
        self.controller = Controller(self.mailbox, hostname="127.0.0.1", port=self.port)

    def message_ids(self, recipient: str) -> Counter[str]:
        return Counter(str(m["Message-ID"]) for to, m in list(self.mailbox.messages) if recipient in to)


def make_users(path: Path) -> None:
    """The dashboard users who own the subscriptions: a monitor and a site user of GZ-01."""
    users = UserStore(path, hasher=PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
    users.add("mona", "monitor")
    users.add("sam", "site", site="GZ-01")


def subscribe(data_dir: Path, users_file: Path, study: str, *options: str) -> tuple[str, str | None]:
    """``trialguard notify subscribe …``: the subscription id and the webhook secret (if any)."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "services.cli",
            "notify",
            "subscribe",
            "--study",
            study,
            "--data-dir",
            str(data_dir),
            "--users-file",
            str(users_file),
            *options,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    secret = lines[1].rsplit(" ", 1)[-1] if len(lines) > 1 else None
    return lines[0], secret


class NotifierProcess(HttpServiceProcess):
    """``trialguard notifier serve`` as a child process, on the test's SMTP server, retrying fast."""

    command = ("notifier", "serve")

    def __init__(
        self,
        settings: KafkaSettings,
        data_dir: Path,
        log_path: Path,
        users_file: Path,
        smtp_port: int,
        max_attempts: int = 1_000,
        more_studies: tuple[str, ...] = (),
    ) -> None:
        super().__init__(settings, data_dir, log_path)
        self.users_file = users_file
        self.smtp_port = smtp_port
        self.max_attempts = max_attempts
        self.more_studies = more_studies
        """Studies served besides ``settings.study_id`` (``--study`` again for each)."""

    def options(self) -> list[str]:
        return [
            *super().options(),
            "--users-file",
            str(self.users_file),
            "--smtp-port",
            str(self.smtp_port),
            "--backoff",
            "0.1",
            "--max-backoff",
            "0.5",
            "--max-attempts",
            str(self.max_attempts),
            *(option for study in self.more_studies for option in ("--study", study)),
        ]

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def operations(self) -> dict[str, Any]:
        return dict(httpx.get(self.url + "/operations", timeout=10).json())

    def metric(self, line_start: str) -> float:
        """The value of the /metrics line that starts with ``line_start`` (0 when absent)."""
        for line in httpx.get(self.url + "/metrics", timeout=10).text.splitlines():
            if line.startswith(line_start + " "):
                return float(line.rsplit(" ", 1)[1])
        return 0.0
