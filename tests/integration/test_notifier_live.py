"""The notifier on a real broker, a real SMTP server (aiosmtpd) and a real webhook receiver:
each finding delivered once per matching subscriber, through a receiver restart, a notifier
killed with SIGKILL, and a receiver that always fails (dead letters)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher

from services.dashboard.users import UserStore
from services.kafka import KafkaSettings, ensure_topics
from services.notifier.signing import verify
from tests.integration.conftest import REPORT
from tests.integration.kafka_support import wait_for
from tests.integration.notifier_support import (
    NotifierProcess,
    SmtpServer,
    WebhookReceiver,
    make_users,
    subscribe,
)
from tests.integration.test_dashboard_read_model import _produce
from tests.unit.test_read_model import _alert, _finding

pytestmark = pytest.mark.integration


def _id(document: dict[str, Any]) -> str:
    return str(document.get("deviation_id") or document["alert_id"])


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    hooks = WebhookReceiver()
    hooks.start()
    yield hooks
    if hooks._server is not None and not hooks._server.should_exit:
        hooks.stop()


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer()
    server.controller.start()
    yield server
    server.controller.stop()


@pytest.fixture
def notifier(settings: KafkaSettings, tmp_path: Path, smtp: SmtpServer) -> Iterator[Callable[..., NotifierProcess]]:
    """Start the notifier on this test's topics; every process started is ended after the test."""
    started: list[NotifierProcess] = []
    make_users(tmp_path / "users.sqlite3")

    def start(**options: Any) -> NotifierProcess:
        process = NotifierProcess(
            settings,
            tmp_path / "notifier",
            tmp_path / "notifier.log",
            tmp_path / "users.sqlite3",
            smtp.port,
            **options,
        )
        started.append(process)
        return process.start()

    yield start
    for process in started:
        if process.proc is not None and process.proc.poll() is None:
            process.kill()


def _subscribe(settings: KafkaSettings, tmp_path: Path, *options: str) -> tuple[str, str | None]:
    return subscribe(tmp_path / "notifier", tmp_path / "users.sqlite3", settings.study_id, *options)


async def test_each_finding_once_per_matching_subscriber_through_a_receiver_restart(
    settings: KafkaSettings,
    tmp_path: Path,
    receiver: WebhookReceiver,
    smtp: SmtpServer,
    notifier: Callable[..., NotifierProcess],
) -> None:
    await ensure_topics(settings)
    monitor_hook, secret = _subscribe(settings, tmp_path, "--user", "mona", "--webhook", receiver.url("mona"))
    receiver.secrets["mona"] = secret or ""
    site_hook, secret = _subscribe(settings, tmp_path, "--user", "sam", "--webhook", receiver.url("sam"))
    receiver.secrets["sam"] = secret or ""
    alerts_mail, _ = _subscribe(settings, tmp_path, "--user", "mona", "--email", "mona@example.org", "--kind", "alert")
    rule_mail, _ = _subscribe(settings, tmp_path, "--user", "sam", "--email", "sam@example.org", "--rule", "SEQ-02")
    findings = [_finding(n) for n in range(60)] + [_alert(1000 + n) for n in range(10)]
    first, second = findings[:30] + findings[60:65], findings[30:60] + findings[65:]
    service = await asyncio.to_thread(notifier)

    await _produce(settings, first)

    async def some_delivered() -> bool:
        return len(receiver.delivery_ids("mona")) >= 10

    await wait_for(some_delivered, "10 webhooks to the monitor")
    await asyncio.to_thread(receiver.stop)
    await _produce(settings, second)

    async def failing() -> bool:
        return await asyncio.to_thread(service.metric, 'trialguard_notifier_attempts_total{outcome="retried"}') > 0

    await wait_for(failing, "failed attempts while the receiver is down")
    failed_while_down = await asyncio.to_thread(service.metric, 'trialguard_notifier_attempts_total{outcome="retried"}')
    await asyncio.to_thread(receiver.start)

    expected = {
        monitor_hook: {_id(f) for f in findings},
        site_hook: {_id(f) for f in findings if f["site_id"] == "GZ-01"},
        alerts_mail: {_id(f) for f in findings if "alert_id" in f},
        rule_mail: {_id(f) for f in findings if f["site_id"] == "GZ-01" and f["rule_id"] == "SEQ-02"},
    }

    async def all_delivered() -> bool:
        totals = (await asyncio.to_thread(service.operations))["subscriptions"]
        return all(totals.get(s, {}).get("delivered") == len(ids) for s, ids in expected.items())

    await wait_for(all_delivered, "every matching finding delivered to every subscriber", timeout=120)
    operations = await asyncio.to_thread(service.operations)
    assert operations["totals"] == {"pending": 0, "delivered": sum(map(len, expected.values())), "dead": 0}

    for hook, subscription in (("mona", monitor_hook), ("sam", site_hook)):
        received = receiver.delivery_ids(hook)
        assert set(received) == {f"{subscription}/{i}" for i in expected[subscription]}, hook
        assert max(received.values()) == 1, f"duplicates to {hook}: {[d for d, n in received.items() if n > 1]}"
    assert all(r.verified for r in receiver.received), "a delivery whose signature does not verify"
    assert {r.body["site_id"] for r in receiver.received if r.hook == "sam"} == {"GZ-01"}
    for address, subscription in (("mona@example.org", alerts_mail), ("sam@example.org", rule_mail)):
        mails = smtp.message_ids(address)
        assert set(mails) == {f"<{i}.{subscription}@trialguard>" for i in expected[subscription]}, address
        assert max(mails.values()) == 1, f"duplicate emails to {address}"

    counts = {
        "findings": len(findings),
        "webhooks to the monitor": len(receiver.delivery_ids("mona")),
        "webhooks to the site user (GZ-01 only)": len(receiver.delivery_ids("sam")),
        "emails (alerts) to the monitor": len(smtp.message_ids("mona@example.org")),
        "emails (SEQ-02) to the site user": len(smtp.message_ids("sam@example.org")),
        "failed attempts while the receiver was down": int(failed_while_down),
        "duplicates": 0,
        "dead letters": operations["totals"]["dead"],
    }
    REPORT.append("notifier, receiver restarted mid-way: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    print(json.dumps(counts))


async def test_a_notifier_killed_and_restarted_loses_nothing_and_queues_nothing_twice(
    settings: KafkaSettings,
    tmp_path: Path,
    receiver: WebhookReceiver,
    notifier: Callable[..., NotifierProcess],
) -> None:
    await ensure_topics(settings)
    subscription, secret = _subscribe(settings, tmp_path, "--user", "mona", "--webhook", receiver.url("mona"))
    receiver.secrets["mona"] = secret or ""
    findings = [_finding(n) for n in range(80)]
    service = await asyncio.to_thread(notifier)
    await _produce(settings, findings[:40])

    async def some_delivered() -> bool:
        return len(receiver.delivery_ids("mona")) >= 10

    await wait_for(some_delivered, "10 webhooks before the kill")
    await asyncio.to_thread(service.kill)
    await _produce(settings, findings[40:])
    service = await asyncio.to_thread(notifier)

    async def all_delivered() -> bool:
        return len(receiver.delivery_ids("mona")) == len(findings)

    await wait_for(all_delivered, "every finding delivered after the restart", timeout=120)
    operations = await asyncio.to_thread(service.operations)
    assert operations["subscriptions"][subscription] == {"pending": 0, "delivered": 80, "dead": 0}
    received = receiver.delivery_ids("mona")
    assert set(received) == {f"{subscription}/{_id(f)}" for f in findings}
    # At least once: only a send in flight at the SIGKILL (at most --concurrency, 4) can arrive
    # twice, with the same X-TrialGuard-Delivery id for the receiver to drop; a finding read
    # again from Kafka after the kill finds its outbox row and is not queued again.
    repeated = sum(n - 1 for n in received.values())
    assert repeated <= 4, f"{repeated} repeated deliveries: more than the sends in flight at the kill"
    REPORT.append(
        f"notifier killed -9 mid-way: {len(findings)} findings, {len(received)} delivered, {repeated} repeated"
    )


async def test_a_receiver_that_always_fails_ends_as_dead_letters_and_others_still_get_theirs(
    settings: KafkaSettings,
    tmp_path: Path,
    receiver: WebhookReceiver,
    notifier: Callable[..., NotifierProcess],
) -> None:
    await ensure_topics(settings)
    failing, secret = _subscribe(settings, tmp_path, "--user", "mona", "--webhook", receiver.url("mona", failing=True))
    receiver.secrets["mona"] = secret or ""
    healthy, secret = _subscribe(settings, tmp_path, "--user", "sam", "--webhook", receiver.url("sam"))
    receiver.secrets["sam"] = secret or ""
    findings = [_finding(n) for n in range(6)]
    service = await asyncio.to_thread(notifier, max_attempts=3)
    await _produce(settings, findings)

    async def settled() -> bool:
        totals: dict[str, dict[str, int]] = (await asyncio.to_thread(service.operations))["subscriptions"]
        return totals.get(failing, {}).get("dead") == 6 and totals.get(healthy, {}).get("delivered") == 3

    await wait_for(settled, "6 dead letters and 3 deliveries")
    operations = await asyncio.to_thread(service.operations)
    assert operations["totals"] == {"pending": 0, "delivered": 3, "dead": 6}
    assert {(d["subscription_id"], d["attempts"], d["last_error"]) for d in operations["dead_letters"]} == {
        (failing, 3, "HTTP 500")
    }
    assert sorted(receiver.delivery_ids("mona").values()) == [3] * 6, "not exactly 3 attempts per dead letter"
    assert await asyncio.to_thread(service.metric, "trialguard_notifier_dead_letters") == 6

    # The signature is the receiver's proof: each one verifies with its subscription's secret, and
    # the same body, timestamp and signature are refused under another key or with a changed body.
    for request in receiver.received:
        assert request.verified
        other = receiver.secrets["sam" if request.hook == "mona" else "mona"]
        assert not verify(other, request.timestamp, request.signature, request.raw)
        forged = request.raw.replace(b"GZ-0", b"GZ-9")
        assert not verify(receiver.secrets[request.hook], request.timestamp, request.signature, forged)
    uuid.UUID(operations["dead_letters"][0]["finding_id"])  # ids only on the operations endpoint


async def test_one_notifier_delivers_two_studies_each_to_its_own_subscribers_only(
    settings: KafkaSettings,
    tmp_path: Path,
    receiver: WebhookReceiver,
    notifier: Callable[..., NotifierProcess],
) -> None:
    other = dataclasses.replace(settings, study_id="NCT06946485")
    await ensure_topics(settings)
    await ensure_topics(other)
    users = UserStore(tmp_path / "users.sqlite3", hasher=PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
    users.add("bea", "monitor", study=other.study_id)  # a monitor of the other study only
    ours, secret = _subscribe(settings, tmp_path, "--user", "mona", "--webhook", receiver.url("mona"))
    receiver.secrets["mona"] = secret or ""
    theirs, secret = _subscribe(other, tmp_path, "--user", "bea", "--webhook", receiver.url("bea"))
    receiver.secrets["bea"] = secret or ""
    mine = [_finding(n) for n in range(10)]
    their_findings = [_finding(100 + n, study_id=other.study_id) for n in range(8)]
    # A record on the other study's topic that claims to be of this study: read there, it is
    # nobody's (each study's findings count only from that study's topic). It goes first, with a
    # participant of the other study's findings: on the same partition, read before them.
    smuggled = _finding(500)
    assert smuggled["participant_id"] == their_findings[1]["participant_id"]
    service = await asyncio.to_thread(notifier, more_studies=(other.study_id,))
    await _produce(other, [smuggled])
    await _produce(settings, mine)
    await _produce(other, their_findings)

    async def both_delivered() -> bool:
        totals: dict[str, dict[str, int]] = (await asyncio.to_thread(service.operations))["subscriptions"]
        delivered = {s: totals.get(s, {}).get("delivered") for s in (ours, theirs)}
        return delivered == {ours: len(mine), theirs: len(their_findings)}

    await wait_for(both_delivered, "each study's findings delivered to its own subscriber", timeout=120)
    assert set(receiver.delivery_ids("mona")) == {f"{ours}/{_id(f)}" for f in mine}
    assert set(receiver.delivery_ids("bea")) == {f"{theirs}/{_id(f)}" for f in their_findings}
    assert {r.body["study_id"] for r in receiver.received if r.hook == "bea"} == {other.study_id}
    assert all(r.verified for r in receiver.received)
    # The dashboard asks for one study's deliveries: the other's are not in the answer.
    async with httpx.AsyncClient(timeout=10) as client:
        answer = await client.get(service.url + "/operations", params={"study": settings.study_id})
    of_ours = answer.json()
    assert set(of_ours["subscriptions"]) == {ours}
    assert await asyncio.to_thread(
        service.metric, f'trialguard_notifier_findings_read_total{{study="{other.study_id}"}}'
    ) == len(their_findings)
