"""`trialguard rules serve` exits only on a configuration error, and names it (exit status 2).

No broker is needed: each of these is found before the service connects.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def serve(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "services.cli", "rules", "serve", "--bootstrap-servers", "127.0.0.1:1", *args],
        cwd=ROOT, env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("args", "env", "named"),
    [
        (["--study", "NCT00000000", "--http-port", "-1"], {}, "NCT00000000"),
        (["--http-port", "-1"], {"TRIALGUARD_SESSION_TIMEOUT_MS": "ten"}, "TRIALGUARD_SESSION_TIMEOUT_MS"),
        (["--namespace", "no spaces", "--http-port", "-1"], {}, "--namespace"),
        (["--http-port", "eighty"], {}, "--http-port"),
    ],
    ids=["unknown-study", "unreadable-session-timeout", "bad-topic-namespace", "unreadable-http-port"],
)
def test_a_configuration_error_is_named_and_ends_the_service(args: list[str], env: dict[str, str], named: str) -> None:
    done = serve(*args, env=env)
    assert done.returncode == 2
    assert named in done.stderr


def test_an_http_port_in_use_is_a_configuration_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = serve("--http-port", str(port))
    assert done.returncode == 2
    assert f"cannot serve HTTP on 127.0.0.1:{port}" in done.stderr
