"""The access log on a real broker: the real CLI changes users and sources, each change reaches the
dashboard's read model naming the OS user as operator, the topic holds no secret, and with the
broker away the CLI changes nothing."""

from __future__ import annotations

import asyncio
import datetime as dt
import getpass
import subprocess
import sys
from pathlib import Path

from services.dashboard.access import authority_at, authority_history, recent_changes
from services.dashboard.consumer import ReadModelConsumer
from services.dashboard.store import ReadModel
from services.dashboard.users import UserStore
from services.gateway.sources import SourceStore
from services.kafka import KafkaSettings, read_to_end
from tests.integration.kafka_support import wait_for
from tests.processes import free_port

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

    values = [r.value or b"" async for r in read_to_end(settings.bootstrap_servers, settings.topics.access_log)]
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
