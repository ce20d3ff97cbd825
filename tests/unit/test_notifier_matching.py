"""Who is told of a finding: matching, a site user's scope, the subscription checks and the
webhook signature, each tried as a subscriber or an attacker would."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from services.notifier.matching import Notice, read_notice, recipients
from services.notifier.settings import DeliverySettings
from services.notifier.signing import new_secret, signature, verify
from services.notifier.subscriptions import (
    Channel,
    Kind,
    Owner,
    Subscription,
    SubscriptionError,
    check_filters,
    check_target,
    scoped_site,
)
from tests.unit.test_read_model import _alert, _finding

OWNERS = {
    "mona": Owner("mona", None),  # a monitor: every site
    "sam": Owner("sam", "GZ-01"),  # a site user of GZ-01
}


def _notice(document: dict[str, Any], published_at: float = 1_000.0) -> Notice:
    notice = read_notice(json.dumps(document).encode(), published_at)
    assert notice is not None
    return notice


def _subscription(owner: str = "mona", **changes: Any) -> Subscription:
    fields: dict[str, Any] = {
        "subscription_id": f"sub-{owner}",
        "owner": owner,
        "channel": Channel.WEBHOOK,
        "target": "https://example.org/hook",
        "study_id": "NCT06904729",
        "created_at": 500.0,
    }
    return Subscription(**(fields | changes))


def test_every_finding_of_the_study_goes_to_an_unfiltered_subscription() -> None:
    notices = [_notice(_finding(n)) for n in range(6)] + [_notice(_alert(7))]
    assert all(recipients(n, [_subscription()], OWNERS) for n in notices)


@pytest.mark.parametrize(
    ("changes", "document", "told"),
    [
        ({"kind": Kind.ALERT}, _alert(1), True),
        ({"kind": Kind.ALERT}, _finding(1), False),
        ({"kind": Kind.DEVIATION}, _finding(1), True),
        ({"rules": ("SEQ-02",)}, _finding(0), True),  # n % 3 == 0: SEQ-02
        ({"rules": ("SEQ-02",)}, _finding(1), False),  # VISIT-01
        ({"rules": ("SAFETY-SAE", "VISIT-01")}, _finding(1), True),
        ({"site": "GZ-02"}, _finding(2), True),  # even n: GZ-02
        ({"site": "GZ-02"}, _finding(1), False),
        ({"study_id": "NCT06946485"}, _finding(1), False),
    ],
)
def test_filters_by_kind_rule_site_and_study(changes: dict[str, Any], document: dict[str, Any], told: bool) -> None:
    assert bool(recipients(_notice(document), [_subscription(**changes)], OWNERS)) is told


def test_a_site_user_is_told_of_their_own_site_only_whatever_the_subscription_says() -> None:
    """A site user's subscription written (or edited in the file) to ask for another site, or for
    every site, still gets only their own site's findings."""
    other_site, own_site = _notice(_finding(2)), _notice(_finding(1))  # GZ-02, GZ-01
    for subscription in (_subscription("sam"), _subscription("sam", site="GZ-02")):
        assert not recipients(other_site, [subscription], OWNERS)
    assert recipients(own_site, [_subscription("sam")], OWNERS)


def test_findings_published_before_the_subscription_are_not_sent() -> None:
    """A notifier started for the first time reads the whole topic: a new subscriber is not
    flooded with the trial's history."""
    assert not recipients(_notice(_finding(1), published_at=499.0), [_subscription()], OWNERS)
    assert recipients(_notice(_finding(1), published_at=500.0), [_subscription()], OWNERS)


def test_a_removed_or_disabled_owner_is_told_nothing() -> None:
    """The owners passed in are the enabled users: one missing gets nothing, nor does a
    subscription naming one owner looked up under another name."""
    notice = _notice(_finding(1))
    assert not recipients(notice, [_subscription("gone")], OWNERS)
    assert not recipients(notice, [_subscription("mona")], {"mona": Owner("sam", "GZ-01")})


def test_a_supersession_or_an_unreadable_record_is_no_notice() -> None:
    superseded = {"event_type": "FindingSuperseded", "finding_id": "00000000-0000-0000-0000-000000000001"}
    for value in (
        json.dumps(superseded).encode(),
        b"not json",
        b"[]",
        None,
        json.dumps(_finding(1) | {"x": 1}).encode(),
    ):
        assert read_notice(value, 1_000.0) is None


def test_a_notice_carries_no_evidence() -> None:
    """Lab values, dates of birth and the like stay in the dashboard: a mailbox is no place for them."""
    notice = _notice(_finding(3, evidence={"birth_date": "2014-03-02", "wbc": 1.62}))
    assert "evidence" not in notice.payload
    assert "2014-03-02" not in json.dumps(dict(notice.payload))


def test_subscribing_checks_the_owner_and_pins_a_site_user_to_their_site() -> None:
    assert scoped_site(OWNERS["sam"], "sam", None) == "GZ-01"
    assert scoped_site(OWNERS["mona"], "mona", None) is None
    assert scoped_site(OWNERS["mona"], "mona", "GZ-02") == "GZ-02"
    with pytest.raises(SubscriptionError, match="sees site GZ-01 only"):
        scoped_site(OWNERS["sam"], "sam", "GZ-02")
    with pytest.raises(SubscriptionError, match="no such dashboard user"):
        scoped_site(None, "mallory", None)


@pytest.mark.parametrize(
    ("channel", "target", "message"),
    [
        (Channel.EMAIL, "a@example.org, b@example.org", "one address"),
        (Channel.EMAIL, "Mallory <m@example.org>", "one address"),
        (Channel.EMAIL, "nobody", "one address"),
        (Channel.WEBHOOK, "file:///etc/passwd", "http:// or https://"),
        (Channel.WEBHOOK, "/relative/hook", "http:// or https://"),
        (Channel.WEBHOOK, "https://user:secret@example.org/hook", "no user or password"),
    ],
)
def test_a_target_that_is_not_one_mailbox_or_web_url_is_refused(channel: Channel, target: str, message: str) -> None:
    with pytest.raises(SubscriptionError, match=message):
        check_target(channel, target)


def test_filters_that_cannot_exist_are_refused() -> None:
    assert check_filters("alert", ["SAFETY-SAE", "SAFETY-SAE"], None) == (Kind.ALERT, ("SAFETY-SAE",))
    with pytest.raises(SubscriptionError, match="--kind"):
        check_filters("everything", [], None)
    with pytest.raises(SubscriptionError, match="--rule"):
        check_filters(None, ["x'; DROP TABLE outbox"], None)
    with pytest.raises(SubscriptionError, match="--site"):
        check_filters(None, [], "../GZ-01")


def test_a_signature_verifies_and_a_forged_one_does_not() -> None:
    secret, body, now = new_secret(), b'{"finding_id": "f"}', int(time.time())
    good = signature(secret, now, body)
    assert verify(secret, str(now), good, body)
    assert not verify(new_secret(), str(now), signature(new_secret(), now, body), body), "another key"
    assert not verify(secret, str(now), good, body.replace(b"f", b"g")), "a changed body"
    assert not verify(secret, str(now + 1), good, body), "a changed timestamp (replayed as new)"
    assert not verify(secret, "soon", good, body)
    assert not verify(secret, str(now), "sha256=" + "0" * 64, body)


def test_backoff_doubles_up_to_its_cap() -> None:
    settings = DeliverySettings(backoff_seconds=2, max_backoff_seconds=10)
    assert [settings.retry_in(n) for n in range(1, 6)] == [2, 4, 8, 10, 10]
