"""What the dashboard users' tests share: a password, cheap hashing, a recording log, `parse`."""

from __future__ import annotations

import argparse

import pytest
from argon2 import PasswordHasher

from services import access_log as access_log_module
from services.dashboard import credentials as credentials_module
from services.dashboard import users as users_module
from services.dashboard.users_cli import add_users_commands

PASSWORD = "correct horse battery"

# Argon2 at its real cost takes a good fraction of a second per hash: tests use the cheapest.
CHEAP = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


class RecordingLog:
    """Stands in for the module's structlog logger: records every entry, prints nothing."""

    def __init__(self) -> None:
        self.entries: list[str] = []

    def _record(self, event: str, **fields: object) -> None:
        self.entries.append(repr((event, fields)))

    info = error = warning = _record


@pytest.fixture(autouse=True)
def logged(monkeypatch: pytest.MonkeyPatch) -> RecordingLog:
    # Independent of the process-wide structlog set-up, which other tests (via cli.main) point at
    # a stream pytest has since closed.
    recording = RecordingLog()
    monkeypatch.setattr(users_module, "log", recording)
    monkeypatch.setattr(credentials_module, "log", recording)
    monkeypatch.setattr(access_log_module, "log", recording)
    return recording


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="trialguard")
    add_users_commands(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)
