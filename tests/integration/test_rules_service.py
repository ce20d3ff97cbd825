"""The rules service end to end on a real broker: events in, deviations and dead letters out."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from protocol.nct06904729 import PROTOCOL
from services.kafka import KafkaSettings, ensure_topics
from tests.builders import event_dict, example_lines, expected_rules
from tests.integration.conftest import ServiceProcess
from tests.integration.kafka_support import (
    dead_letters,
    findings,
    keyed,
    publish,
    rule_ids_by_participant,
    wait_until_consumed,
)

pytestmark = pytest.mark.integration

IMPLEMENTED = {r.rule_id for r in PROTOCOL.rules}


def expected_example_findings() -> dict[str, list[str]]:
    return {pid: rules for pid, rules in expected_rules(IMPLEMENTED).items() if rules}


async def test_example_published_with_aiokafka_raises_what_the_example_expects(
    settings: KafkaSettings, rules_service: Callable[[], ServiceProcess]
) -> None:
    service = rules_service()
    await publish(settings, keyed(example_lines()))
    await wait_until_consumed(settings, service.check_alive)

    found = await findings(settings)
    assert rule_ids_by_participant(found) == expected_example_findings()
    (consent,) = [f for f in found if f["rule_id"] == "CONSENT-01"]
    assert consent["participant_id"] == "E-03"
    assert consent["protocol_reference"] == "Inclusion 8"
    assert consent["category"] == "INFORMED CONSENT"
    assert await dead_letters(settings) == []


async def test_example_published_with_kcat_raises_the_same(
    settings: KafkaSettings, rules_service: Callable[[], ServiceProcess], tmp_path: Path
) -> None:
    kcat = shutil.which("kcat")
    assert kcat, "kcat is needed for this test: apt-get install kcat (the CI script installs it)"
    await ensure_topics(settings)
    service = rules_service()
    messages = tmp_path / "messages.txt"
    messages.write_bytes(b"".join(key + b"\t" + value + b"\n" for key, value in keyed(example_lines())))
    subprocess.run(
        [
            kcat,
            "-P",
            "-b",
            settings.bootstrap_servers,
            "-t",
            settings.topics.participant_events,
            "-K",
            "\t",
            "-X",
            "partitioner=murmur2_random",
            "-l",
            str(messages),
        ],
        check=True,
        timeout=60,
    )
    await wait_until_consumed(settings, service.check_alive)

    assert rule_ids_by_participant(await findings(settings)) == expected_example_findings()


async def test_malformed_messages_are_dead_lettered_and_the_next_good_one_is_processed(
    settings: KafkaSettings, rules_service: Callable[[], ServiceProcess]
) -> None:
    service = rules_service()
    not_json = b'{"event_type": "ScreeningLabResulted", '
    negative_weight = json.dumps(
        event_dict(
            "ParticipantRegistered",
            {"birth_date": "2014-01-01", "sex": "M", "height_cm": 140.0, "weight_kg": -3.0},
            participant="M-01",
        )
    ).encode()
    lab_before_consent = json.dumps(
        event_dict("ScreeningLabResulted", {"loinc": "751-8", "value": 2.1, "unit": "10*9/L"}, participant="M-01")
    ).encode()
    await publish(settings, [(b"M-01", not_json), (b"M-01", negative_weight), (b"M-01", lab_before_consent)])
    await wait_until_consumed(settings, service.check_alive)

    rejected = await dead_letters(settings)
    assert [r.value for r in rejected] == [not_json, negative_weight]
    reasons = [dict(r.headers)["trialguard.error"].decode() for r in rejected]
    assert reasons[0].startswith("<message>: not JSON")
    assert reasons[1].startswith("payload.weight_kg: Input should be greater than or equal to 0.2 (got -3.0)")
    assert {dict(r.headers)["trialguard.source.topic"] for r in rejected} == {
        settings.topics.participant_events.encode()
    }
    assert rule_ids_by_participant(await findings(settings)) == {"M-01": ["CONSENT-01"]}


@pytest.mark.parametrize(
    ("how", "lose_snapshots"),
    [(signal.SIGTERM, False), (signal.SIGKILL, False), (signal.SIGTERM, True), (signal.SIGTERM, "undecodable")],
    ids=[
        "graceful stop",
        "kill -9",
        "state topic deleted: rebuilt from the log",
        "a snapshot that cannot be decoded when its participant comes: rebuilt from the log",
    ],
)
async def test_a_restarted_service_does_not_raise_the_same_deviation_twice(
    settings: KafkaSettings,
    rules_service: Callable[[], ServiceProcess],
    how: signal.Signals,
    lose_snapshots: bool | str,
) -> None:
    lines = example_lines()
    e03_consented = next(i for i, line in enumerate(lines) if b'"E-03"' in line and b"ConsentSigned" in line)
    first, rest = lines[: e03_consented + 2], lines[e03_consented + 2 :]
    # A lab collected before consent but recorded after: a fresh service that lost E-03's state
    # would raise CONSENT-01 again for it.
    late_lab = json.dumps(
        event_dict(
            "ScreeningLabResulted",
            {"loinc": "731-0", "value": 1.5, "unit": "10*9/L"},
            participant="E-03",
            at="2025-11-30T09:00:00+08:00",
        )
    ).encode()

    service = rules_service()
    await publish(settings, keyed(first))
    await wait_until_consumed(settings, service.check_alive)
    assert rule_ids_by_participant(await findings(settings)) == {"E-03": ["CONSENT-01"]}
    service.stop(how)
    if lose_snapshots is True:
        admin = AIOKafkaAdminClient(**settings.client_kwargs())
        await admin.start()
        await admin.delete_topics([settings.topics.participant_state])
        await admin.close()
    elif lose_snapshots == "undecodable":
        # Shaped like a snapshot, so the restore keeps it; it fails only when E-03's next event
        # needs it (states are decoded when first asked for). Same key, same partition count:
        # the same partition as E-03's own snapshots, and the latest there.
        broken = b'{"snapshot_version":4,"participant_id":"E-03"}'
        producer = AIOKafkaProducer(**settings.client_kwargs())
        await producer.start()
        await producer.send_and_wait(settings.topics.participant_state, broken, key=b"E-03")
        await producer.stop()

    service = rules_service()
    await publish(settings, keyed(rest) + keyed(first) + keyed([late_lab]))  # with every early event again
    await wait_until_consumed(settings, service.check_alive)

    found = await findings(settings)
    assert rule_ids_by_participant(found) == expected_example_findings()
    assert len({f["deviation_id"] for f in found}) == len(found)
    assert ("snapshots_missing" in service.log()) == (lose_snapshots is True)
    assert ("snapshots_unreadable" in service.log()) == (lose_snapshots == "undecodable")
