"""Which subscriptions a finding goes to: a pure function of the finding, the subscriptions and
their owners, so the rules of who is told are tested without Kafka, SMTP or HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from contracts import DeviationRaised, SafetyAlertRaised
from services.notifier.subscriptions import Kind, Owner, Subscription


@dataclass(frozen=True)
class Notice:
    """What a notification says about a finding: identifiers and the protocol's words, never the
    evidence (lab values, dates of birth) — the subscriber follows the link to see those.

    Attributes:
        finding_id: the deviation or alert id.
        kind: deviation or alert.
        payload: the JSON document sent (webhook body; the email's fields).
        published_at: when the finding reached the topic (the record's timestamp, Unix seconds).
    """

    finding_id: str
    kind: Kind
    study_id: str
    site_id: str
    participant_id: str
    rule_id: str
    payload: Mapping[str, Any]
    published_at: float


def read_notice(value: bytes | None, published_at: float) -> Notice | None:
    """The notice of a deviations-topic record; None for a record that is no new finding
    (a supersession) or cannot be read (the read model reports those)."""
    try:
        document = json.loads(value or b"")
        kind = document.get("event_type") if isinstance(document, dict) else None
        if kind == "SafetyAlertRaised":
            alert = SafetyAlertRaised.model_validate(document)
            extra = {"severity": None, "category": "SAFETY ALERT"}
            return _notice(alert, str(alert.alert_id), Kind.ALERT, extra, published_at)
        if kind == "DeviationRaised":
            deviation = DeviationRaised.model_validate(document)
            extra = {"severity": deviation.severity.value, "category": deviation.category.value}
            return _notice(deviation, str(deviation.deviation_id), Kind.DEVIATION, extra, published_at)
    except (ValueError, ValidationError):
        return None
    return None


def _notice(
    finding: DeviationRaised | SafetyAlertRaised,
    finding_id: str,
    kind: Kind,
    extra: dict[str, Any],
    published_at: float,
) -> Notice:
    payload = {
        "finding_id": finding_id,
        "kind": kind.value,
        "study_id": finding.study_id,
        "site_id": finding.site_id,
        "participant_id": finding.participant_id,
        "rule_id": finding.rule_id,
        "protocol_reference": finding.protocol_reference,
        "protocol_version": finding.protocol_version,
        "term": finding.term,
        "occurred_at": finding.occurred_at.isoformat(),
        **extra,
    }
    return Notice(
        finding_id,
        kind,
        finding.study_id,
        finding.site_id,
        finding.participant_id,
        finding.rule_id,
        payload,
        published_at,
    )


def matches(subscription: Subscription, notice: Notice, owner: Owner | None) -> bool:
    """Whether ``notice`` goes to ``subscription``.

    The owner must still exist (and be enabled); a site user's subscription gets its own site's
    findings only, even if its filter was written otherwise; findings published before the
    subscription are not sent; then study, kind, rules and site filter as asked.
    """
    if owner is None or owner.name != subscription.owner:
        return False
    if owner.site is not None and notice.site_id != owner.site:
        return False
    if notice.study_id != subscription.study_id or notice.published_at < subscription.created_at:
        return False  # another study's, or older than the subscription (a first start reads the whole topic)
    if subscription.kind is not None and notice.kind is not subscription.kind:
        return False
    if subscription.rules and notice.rule_id not in subscription.rules:
        return False
    return subscription.site is None or notice.site_id == subscription.site


def recipients(
    notice: Notice, subscriptions: Iterable[Subscription], owners: Mapping[str, Owner]
) -> list[Subscription]:
    """The subscriptions ``notice`` goes to."""
    return [s for s in subscriptions if matches(s, notice, owners.get(s.owner))]
