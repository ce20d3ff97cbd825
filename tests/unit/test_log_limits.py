"""Repeated library records (aiokafka while the broker is away) are written once per interval with
the count of those dropped; our own events are never dropped. The clock is injected: no sleeps."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from services.cli import main
from services.log_limits import REPEAT_INTERVAL_ENV, RepeatLimit
from services.logging import configure_logging

INTERVAL = 10.0
CONNECT_FAILED = "Unable connect to node with id %s: %s"
FETCH_FAILED = "Failed fetch messages from %s: %s"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Iterator[Clock]:
    clock = Clock()
    configure_logging("info", json_logs=True, repeat_limit=RepeatLimit(INTERVAL, clock=clock))
    yield clock
    configure_logging("info")  # the next test's library records go through an unlimited clock again


def lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in capsys.readouterr().err.splitlines()]


def connect_failed(node: int = 1, port: int = 9292) -> None:
    error = f"[Errno 111] Connect call failed ('127.0.0.1', {port})"
    logging.getLogger("aiokafka").error(CONNECT_FAILED, node, error)


def test_a_thousand_identical_errors_in_an_interval_write_one_line_and_the_next_carries_the_count(
    clock: Clock, capsys: pytest.CaptureFixture[str]
) -> None:
    for _ in range(1_000):
        connect_failed()
        clock.now += INTERVAL / 2_000
    first = lines(capsys)
    assert [(line["event"], line["logger"]) for line in first] == [("library_error", "aiokafka")]
    assert "repeated" not in first[0]
    assert (
        first[0]["message"] == "Unable connect to node with id 1: [Errno 111] Connect call failed ('127.0.0.1', 9292)"
    )

    clock.now = 1_000.0 + INTERVAL
    connect_failed()
    [after] = lines(capsys)
    assert after["repeated"] == 999

    connect_failed()  # a new interval began with that line: its repeats are dropped again
    assert lines(capsys) == []


def test_different_messages_are_limited_independently(clock: Clock, capsys: pytest.CaptureFixture[str]) -> None:
    for node in range(300):
        connect_failed(node=node, port=9000 + node)  # other arguments, the same template: one kind
        logging.getLogger("aiokafka.consumer.fetcher").error(FETCH_FAILED, 1, "NodeNotReadyError")
        logging.getLogger("aiokafka").error(f"Coordinator {node} gone")  # formatted by the library itself
    assert [line["message"] for line in lines(capsys)] == [
        "Unable connect to node with id 0: [Errno 111] Connect call failed ('127.0.0.1', 9000)",
        "Failed fetch messages from 1: NodeNotReadyError",
        "Coordinator 0 gone",
    ]
    clock.now += INTERVAL
    logging.getLogger("aiokafka.consumer.fetcher").error(FETCH_FAILED, 1, "NodeNotReadyError")
    [fetch] = lines(capsys)
    assert (fetch["logger"], fetch["repeated"]) == ("aiokafka.consumer.fetcher", 299)


def test_our_own_events_are_never_dropped(clock: Clock, capsys: pytest.CaptureFixture[str]) -> None:
    log = structlog.get_logger("test")
    for offset in range(1_000):
        connect_failed()
        log.warning("waiting_for_broker", offset=offset)
    written = lines(capsys)
    ours = [line["offset"] for line in written if line["event"] == "waiting_for_broker"]
    assert ours == list(range(1_000))
    assert len(written) == 1_001


def test_repeats_that_stop_are_still_counted(clock: Clock, capsys: pytest.CaptureFixture[str]) -> None:
    for _ in range(50):
        connect_failed()
    lines(capsys)
    clock.now += 2 * INTERVAL  # the broker came back: no more of these
    logging.getLogger("aiokafka.consumer.group_coordinator").warning("Heartbeat failed: %s", "rebalancing")
    report, heartbeat = lines(capsys)
    assert (report["event"], report["logger"], report["repeated"], report["level"]) == (
        "library_repeated",
        "aiokafka",
        49,
        "error",
    )
    assert heartbeat["event"] == "library_warning"

    for _ in range(5):
        logging.getLogger("aiokafka.consumer.group_coordinator").warning("Heartbeat failed: %s", "rebalancing")
    for handler in logging.getLogger().handlers:
        handler.flush()  # as logging.shutdown does at exit: what no line carried yet is written
    [at_exit] = [line for line in lines(capsys) if line["event"] == "library_repeated"]
    assert (at_exit["logger"], at_exit["repeated"]) == ("aiokafka.consumer.group_coordinator", 5)


def test_records_from_several_threads_are_each_counted_once(clock: Clock, capsys: pytest.CaptureFixture[str]) -> None:
    def flood() -> None:
        for _ in range(500):
            connect_failed()

    threads = [threading.Thread(target=flood) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    clock.now += INTERVAL
    connect_failed()
    first, after = lines(capsys)
    assert "repeated" not in first
    assert after["repeated"] == 8 * 500 - 1


def test_the_kinds_tracked_are_bounded_and_a_kind_let_go_keeps_its_count() -> None:
    reports: list[tuple[str, int]] = []
    limit = RepeatLimit(
        INTERVAL,
        report=lambda _logger, _level, message, count: reports.append((message, count)),
        clock=Clock(),
        max_kinds=3,
    )
    records = [logging.LogRecord("lib", logging.ERROR, __file__, 1, f"failure {name}", None, None) for name in "abcde"]
    passed = [limit.filter(record) for record in records[:3] for _ in range(2)]
    assert passed == [True, False] * 3
    assert [limit.filter(record) for record in records[3:]] == [True, True]
    assert reports == [("failure a", 1), ("failure b", 1)]  # the oldest two let go, their counts told


def test_a_bad_interval_setting_is_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(REPEAT_INTERVAL_ENV, "10s")
    assert main(["protocol", "list"]) == 2
    assert (
        f"configuration error: {REPEAT_INTERVAL_ENV}='10s' is not a whole number of milliseconds"
        in capsys.readouterr().err
    )
    monkeypatch.delenv(REPEAT_INTERVAL_ENV)
    configure_logging("info")


def test_uvicorn_warnings_a_client_provokes_are_limited_too_and_never_quote_the_request(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from services import http

    uvicorn = logging.getLogger("uvicorn")
    monkeypatch.setattr(uvicorn, "handlers", [])  # a bridge of this test's own; the process's one comes back after
    monkeypatch.setenv(REPEAT_INTERVAL_ENV, str(3_600_000))  # an hour: no window can end during the test
    configure_logging("info", json_logs=True)
    http._quiet_uvicorn()
    for attempt in range(500):  # a scanner sending garbage: one warning per request
        logging.getLogger("uvicorn.error").warning("Invalid HTTP request received: %s", f"GET /?dob=1961-0{attempt}")
    for handler in uvicorn.handlers:
        handler.flush()  # as at exit
    written = lines(capsys)
    assert [(line["event"], line["message"], line.get("repeated")) for line in written] == [
        ("uvicorn_warning", "Invalid HTTP request received: %s", None),
        ("uvicorn_repeated", "Invalid HTTP request received: %s", 499),
    ]
    assert "dob" not in json.dumps(written)
    configure_logging("info")
