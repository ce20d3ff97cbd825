"""The lifecycle of a gateway source, as attacks: a rotated-away key, a disabled or removed source,
each refused with 401 on the next request; every change an access-log event naming the operator and
the source and carrying no key; with the access log away, nothing changes."""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import io
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from contracts import AccessChanged
from services.gateway.app import create_app
from services.gateway.commands import (
    add_gateway_commands,
    sources_add,
    sources_list,
    sources_rotate_key,
    sources_set,
    sources_state,
)
from services.gateway.registry import ParticipantRegistry
from services.gateway.settings import GatewaySettings
from services.gateway.sources import SourceError, SourceStore
from services.kafka import KafkaSettings
from tests.access import broker_away, recording
from tests.unit.test_gateway_json import LINES, FakePublisher, _post

ADMIN = "ops-alice"


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_gateway_commands(parser.add_subparsers(dest="command"))
    return parser.parse_args(list(argv))


@pytest.fixture
def gateway(tmp_path: Path) -> tuple[TestClient, Path]:
    settings = GatewaySettings(KafkaSettings("127.0.0.1:1", "NCT06904729", "unit"), tmp_path, "127.0.0.1", 0)
    app = create_app(settings, sources=SourceStore(settings.sources_path), publisher=FakePublisher(),
                     registry=ParticipantRegistry())  # fmt: skip
    return TestClient(app), tmp_path


def _run(command: Any, *argv: str, data_dir: Path, events: list[AccessChanged]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    args = parse("sources", *argv, "--data-dir", str(data_dir))
    status = command(args, stdout=out, stderr=err, recorder=recording(events, ADMIN))
    return status, out.getvalue().strip(), err.getvalue()


def _add(data_dir: Path, events: list[AccessChanged]) -> str:
    status, key, _ = _run(sources_add, "add", "lis.gz01", "--site", "GZ-01", "--hl7-application", "LIS",
                          "--hl7-facility", "GZ01", data_dir=data_dir, events=events)  # fmt: skip
    assert status == 0
    return key


def test_a_rotated_key_is_refused_at_once_and_the_new_one_works(gateway: Any) -> None:
    client, data_dir = gateway
    events: list[AccessChanged] = []
    old = _add(data_dir, events)
    assert _post(client, old, LINES[0]).status_code != 401
    status, new, err = _run(sources_rotate_key, "rotate-key", "lis.gz01", data_dir=data_dir, events=events)
    assert status == 0
    assert new
    assert new != old
    assert "shown once" in err
    assert _post(client, old, LINES[0]).status_code == 401
    assert _post(client, new, LINES[0]).status_code != 401


@pytest.mark.parametrize("action", ["disable", "remove"])
def test_a_disabled_or_removed_source_gets_401_and_its_hl7_identity_is_refused(gateway: Any, action: str) -> None:
    client, data_dir = gateway
    events: list[AccessChanged] = []
    key = _add(data_dir, events)
    assert _run(sources_state, action, "lis.gz01", data_dir=data_dir, events=events)[0] == 0
    assert _post(client, key, LINES[0]).status_code == 401
    store = SourceStore(data_dir / "sources.sqlite3")
    assert store.by_sending_application("LIS", "GZ01") is None


def test_an_enabled_source_is_accepted_again(gateway: Any) -> None:
    client, data_dir = gateway
    events: list[AccessChanged] = []
    key = _add(data_dir, events)
    _run(sources_state, "disable", "lis.gz01", data_dir=data_dir, events=events)
    _run(sources_state, "enable", "lis.gz01", data_dir=data_dir, events=events)
    assert _post(client, key, LINES[0]).status_code != 401
    out = io.StringIO()
    assert sources_list(parse("sources", "list", "--data-dir", str(data_dir)), stdout=out) == 0
    assert out.getvalue().split("\t")[-1].strip() == "enabled"


def test_every_change_is_an_event_naming_operator_and_source_without_the_key(gateway: Any) -> None:
    _, data_dir = gateway
    events: list[AccessChanged] = []
    keys = [_add(data_dir, events)]
    keys.append(_run(sources_rotate_key, "rotate-key", "lis.gz01", data_dir=data_dir, events=events)[1])
    for action in ("disable", "enable", "remove"):
        _run(sources_state, action, "lis.gz01", data_dir=data_dir, events=events)
    assert [e.action.value for e in events] == [
        "source-added", "source-key-rotated", "source-disabled", "source-enabled", "source-removed"
    ]  # fmt: skip
    assert [e.enabled for e in events] == [True, True, False, True, False]
    assert {(e.operator, e.via, e.subject_kind, e.subject, e.site) for e in events} == {
        (ADMIN, "cli", "source", "lis.gz01", "GZ-01")
    }
    secrets = keys + [hashlib.sha256(key.encode()).hexdigest() for key in keys]
    for event in events:
        text = event.model_dump_json()
        assert all(secret not in text for secret in secrets)


def test_with_the_access_log_away_nothing_changes(gateway: Any) -> None:
    client, data_dir = gateway
    key = _add(data_dir, [])
    out, err = io.StringIO(), io.StringIO()
    for command, action in ((sources_rotate_key, "rotate-key"), (sources_state, "disable"), (sources_state, "remove")):
        args = parse("sources", action, "lis.gz01", "--data-dir", str(data_dir))
        assert command(args, stdout=out, stderr=err, recorder=broker_away()) == 3
    assert "nothing was changed" in err.getvalue()
    assert out.getvalue() == ""
    assert _post(client, key, LINES[0]).status_code != 401  # the old key still works: nothing happened
    args = parse("sources", "add", "lis.gz02", "--site", "GZ-02", "--data-dir", str(data_dir))
    assert sources_add(args, stdout=out, stderr=err, recorder=broker_away()) == 3
    assert SourceStore(data_dir / "sources.sqlite3").get("lis.gz02") is None


def test_changing_an_unknown_source_is_refused(tmp_path: Path) -> None:
    err = io.StringIO()
    args = parse("sources", "rotate-key", "ghost", "--data-dir", str(tmp_path))
    assert sources_rotate_key(args, stdout=io.StringIO(), stderr=err, recorder=recording([])) == 1
    assert "no source named 'ghost'" in err.getvalue()
    with pytest.raises(SourceError):
        SourceStore(tmp_path / "sources.sqlite3").set_enabled("ghost", False, recording([]))


def test_a_sources_file_from_before_the_lifecycle_keeps_its_sources_enabled(tmp_path: Path) -> None:
    path = tmp_path / "sources.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE sources (name TEXT PRIMARY KEY, site TEXT NOT NULL, hl7_application TEXT, hl7_facility TEXT,"
            " key_sha256 TEXT NOT NULL UNIQUE, created_at TEXT NOT NULL, UNIQUE (hl7_application, hl7_facility))"
        )
        db.execute("INSERT INTO sources VALUES ('old', 'GZ-01', NULL, NULL, 'x', '2026-01-01T00:00:00+00:00')")
    db.close()
    (source,) = SourceStore(path).list_sources()
    assert source.enabled


def test_how_a_sources_messages_are_read_is_set_and_logged(tmp_path: Path) -> None:
    store = SourceStore(tmp_path / "sources.sqlite3")
    source, _ = store.add("lis.gz01", "GZ-01", time_zone="Asia/Shanghai")
    assert (source.time_zone, source.strict) == ("Asia/Shanghai", False)
    with pytest.raises(SourceError, match="--time-zone: 'Mars/Base' is not an IANA time zone name"):
        store.add("lis.mars", "GZ-01", time_zone="Mars/Base")
    events: list[AccessChanged] = []
    args = argparse.Namespace(name="lis.gz01", time_zone=None, strict=True, data_dir=tmp_path, action="set")
    out, err = io.StringIO(), io.StringIO()
    assert sources_set(args, stdout=out, stderr=err, recorder=recording(events, ADMIN)) == 0
    assert out.getvalue() == "source lis.gz01: time zone Asia/Shanghai, strict\n"
    (event,) = events
    assert (event.action.value, event.subject, event.operator) == ("source-configured", "lis.gz01", ADMIN)
    assert store.get("lis.gz01") == dataclasses.replace(source, strict=True)
    listed = io.StringIO()
    sources_list(argparse.Namespace(data_dir=tmp_path), stdout=listed)
    assert "\tAsia/Shanghai\tstrict\t" in listed.getvalue()
