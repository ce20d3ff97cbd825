"""The access log on a real broker: the real CLI changes users and sources, each change reaches the
dashboard's read model naming the OS user as operator, the topic holds no secret, and with the
broker away the CLI changes nothing."""

from __future__ import annotations

import asyncio
import datetime as dt
import getpass
import re
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

from argon2 import PasswordHasher
from fastapi.testclient import TestClient

from services.dashboard.access import authority_at, authority_history, recent_changes
from services.dashboard.app import create_app
from services.dashboard.consumer import ReadModelConsumer
from services.dashboard.roles import Role
from services.dashboard.settings import DashboardSettings
from services.dashboard.store import ReadModel
from services.dashboard.users import UserStore
from services.gateway.sources import SourceStore
from services.kafka import KafkaSettings, read_to_end
from tests.integration.kafka_support import wait_for
from tests.processes import free_port
from tests.unit.test_dashboard_app import PASSWORD, _csrf

ROOT = Path(__file__).parents[2]


def _cli(settings: KafkaSettings, *argv: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "services.cli", *argv]
    command += ["--bootstrap-servers", settings.bootstrap_servers, "--namespace", settings.namespace]
    return subprocess.run(command, input=stdin, capture_output=True, text=True, cwd=ROOT, timeout=120, check=False)


async def test_cli_changes_reach_the_read_model_with_their_operator_and_no_secret(
    settings: KafkaSettings, tmp_path: Path
) -> None:
    users, gateway = ["--data-dir", str(tmp_path / "dashboard")], ["--data-dir", str(tmp_path / "gateway")]
    steps = [
        ("users", "add", "dana", "--role", "monitor", *users),
        ("users", "token", "dana", *users),
        ("users", "role", "dana", "--role", "site", "--site", "GZ-01", *users),
        ("users", "disable", "dana", *users),
        ("sources", "add", "lis.gz01", "--site", "GZ-01", *gateway),
        ("sources", "rotate-key", "lis.gz01", *gateway),
    ]
    secrets = []
    for argv in steps:
        done = await asyncio.to_thread(_cli, settings, *argv)
        assert done.returncode == 0, done.stderr
        secrets.append(done.stdout.strip().rsplit("=", 1)[-1])  # the link's token, the API token, the keys
    (token,) = UserStore(tmp_path / "dashboard" / "users.sqlite3").tokens_of("dana")
    revoked = await asyncio.to_thread(_cli, settings, "users", "revoke-token", token.token_id, *users)
    assert revoked.returncode == 0, revoked.stderr

    store = ReadModel(tmp_path / "read-model.sqlite3", settings.topics)
    consumer = ReadModelConsumer(settings, store, lambda applied: None)
    await consumer.start()
    try:

        async def all_seen() -> bool:
            with store.reader() as db:
                return len(recent_changes(db)) >= len(steps) + 1

        await wait_for(all_seen, "every change in the read model", timeout=60)
    finally:
        await consumer.stop()
    with store.reader() as db:
        rows = list(reversed(recent_changes(db)))
        history = authority_history(db, "dana")
    assert [row["action"] for row in rows] == [
        "user-added", "token-issued", "user-role-changed", "user-disabled", "source-added", "source-key-rotated",
        "token-revoked",
    ]  # fmt: skip
    assert {(row["operator"], row["via"]) for row in rows} == {(getpass.getuser(), "cli")}
    assert [row["subject"] for row in rows] == ["dana"] * 4 + ["lis.gz01"] * 2 + ["dana"]
    assert rows[-1]["token_id"] == token.token_id
    assert authority_at(history, dt.datetime.now(dt.UTC)) == ("site", "GZ-01", False)

    values = [r.value or b"" async for r in read_to_end(settings, settings.topics.access_log)]
    assert len(values) == len(steps) + 1
    assert all(secret and secret.encode() not in value for secret in secrets for value in values)


async def test_with_the_broker_away_the_cli_changes_nothing(settings: KafkaSettings, tmp_path: Path) -> None:
    away = KafkaSettings(f"127.0.0.1:{free_port()}", settings.study_id, settings.namespace)
    users = ["--data-dir", str(tmp_path / "dashboard")]
    added = await asyncio.to_thread(_cli, away, "users", "add", "eve", "--role", "admin", *users)
    assert added.returncode == 3
    assert "nothing was changed" in added.stderr
    assert added.stdout == ""
    assert UserStore(tmp_path / "dashboard" / "users.sqlite3").get("eve") is None
    source = await asyncio.to_thread(_cli, away, "sources", "add", "lis.x", "--site", "GZ-01", "--data-dir",
                                     str(tmp_path / "gateway"))  # fmt: skip
    assert source.returncode == 3
    assert SourceStore(tmp_path / "gateway" / "sources.sqlite3").get("lis.x") is None


def test_the_dashboard_publishes_its_own_changes_and_shows_them(settings: KafkaSettings, tmp_path: Path) -> None:
    """The admin adds a user on the page, the user sets their password with the link; both changes
    go through the app's own producer to the broker and come back on the operations page."""
    users = UserStore(tmp_path / "users.sqlite3", hasher=PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
    users.add("admin", Role.ADMIN, PASSWORD)
    app = create_app(DashboardSettings(settings, tmp_path, "127.0.0.1", 0), users)
    with TestClient(app, follow_redirects=False) as client:
        csrf = _csrf(client.get("/login").text)
        assert client.post("/login", data={"name": "admin", "password": PASSWORD, "csrf": csrf}).status_code == 303
        csrf = _csrf(client.get("/admin/users").text)
        added = client.post("/admin/users", data={"csrf": csrf, "name": "nina", "role": "monitor"})
        assert added.status_code == 200, added.text
        link = re.search(r"/set-password\?token=([A-Za-z0-9_-]+)", added.text)
        assert link is not None
        nina = TestClient(app, follow_redirects=False)
        form = {"token": link.group(1), "password": "nina's own passphrase", "confirm": "nina's own passphrase"}
        assert nina.post("/set-password", data=form | {"csrf": _csrf(nina.get("/login").text)}).status_code == 303

        def shown() -> bool:
            page = client.get("/operations").text.split('data-testid="access-log"')[1]
            return "user-added" in page and "user-password-set" in page

        deadline = time.monotonic() + 60
        while not shown():
            assert time.monotonic() < deadline, "the dashboard's changes never reached its operations page"
            time.sleep(0.2)
    assert users.authenticate("nina", "nina's own passphrase") is not None


async def test_a_change_to_a_source_of_two_studies_is_in_both_studies_access_logs(
    settings: KafkaSettings, tmp_path: Path
) -> None:
    """An auditor of either study sees every change to a source that sends for it, whichever
    ``--study`` the operator happened to give (or none)."""
    gateway = ["--data-dir", str(tmp_path / "gateway")]
    both = ["--study", "NCT06904729", "--study", "NCT06946485"]
    for argv in (
        ("sources", "add", "lis.both", "--site", "GZ-01", *both, *gateway),
        ("sources", "rotate-key", "lis.both", *gateway),
        ("sources", "disable", "lis.both", "--study", "NCT06946485", *gateway),
    ):
        done = await asyncio.to_thread(_cli, settings, *argv)
        assert done.returncode == 0, done.stderr
    for study in ("NCT06904729", "NCT06946485"):
        topic = replace(settings, study_id=study).topics.access_log
        values = [r.value or b"" async for r in read_to_end(settings, topic)]
        actions = [re.search(rb'"action":\s*"([a-z-]+)"', value) for value in values]
        assert [m.group(1).decode() for m in actions if m] == ["source-added", "source-key-rotated", "source-disabled"]


async def test_disabling_a_user_of_two_studies_is_in_both_studies_access_logs(
    settings: KafkaSettings, tmp_path: Path
) -> None:
    """Disabling, a password reset and a token concern the user in every study they hold a role
    in: each study's log (which its read model re-checks reviews against) has the change."""
    users = ["--data-dir", str(tmp_path / "dashboard")]
    for argv in (
        ("users", "add", "dana", "--role", "monitor", "--study", "NCT06904729", *users),
        ("users", "role", "dana", "--role", "monitor", "--study", "NCT06946485", *users),
        ("users", "token", "dana", *users),
        ("users", "disable", "dana", *users),
    ):
        done = await asyncio.to_thread(_cli, settings, *argv)
        assert done.returncode == 0, done.stderr
    (token,) = UserStore(tmp_path / "dashboard" / "users.sqlite3").tokens_of("dana")
    revoked = await asyncio.to_thread(_cli, settings, "users", "revoke-token", token.token_id, *users)
    assert revoked.returncode == 0, revoked.stderr
    whole_user = ["token-issued", "user-disabled", "token-revoked"]
    for study in ("NCT06904729", "NCT06946485"):
        topic = replace(settings, study_id=study).topics.access_log
        values = [r.value or b"" async for r in read_to_end(settings, topic)]
        found = [re.search(rb'"action":\s*"([a-z-]+)"', value) for value in values]
        seen = [m.group(1).decode() for m in found if m]
        assert [a for a in seen if a in whole_user] == whole_user, (study, seen)
        assert all(f'"study_id":"{study}"'.encode() in v.replace(b" ", b"") for v in values)
        assert ("user-added" in seen) == (study == "NCT06904729")  # the addition belongs to --study's log
