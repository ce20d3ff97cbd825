"""Sending one delivery: an email through aiosmtplib, or a signed POST through httpx.

Each raises ``DeliveryError`` naming the kind of failure only (``HTTP 503``, ``ConnectError``):
what is logged and kept never quotes a server's answer or the finding's text.
"""

from __future__ import annotations

import json
import time
from email.message import EmailMessage

import aiosmtplib
import httpx

from services.notifier.settings import DeliverySettings, SmtpSettings
from services.notifier.signing import DELIVERY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, signature
from services.notifier.store import Delivery


class DeliveryError(Exception):
    """A send that did not succeed; the message is the kind of failure, safe to log and keep."""


async def send_webhook(client: httpx.AsyncClient, delivery: Delivery) -> None:
    """POST the payload, signed; a 2xx answer is success (redirects are not followed)."""
    body = delivery.payload.encode()
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        DELIVERY_HEADER: delivery.delivery_id,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: signature(delivery.secret or "", timestamp, body),
    }
    try:
        response = await client.post(delivery.target, content=body, headers=headers)
    except httpx.HTTPError as error:
        raise DeliveryError(type(error).__name__) from None
    if not response.is_success:
        raise DeliveryError(f"HTTP {response.status_code}")


def email_message(delivery: Delivery, smtp: SmtpSettings, settings: DeliverySettings) -> EmailMessage:
    """The email of a delivery: a fixed Message-ID per (subscription, finding), so a mail client
    shows a retried delivery once."""
    payload = json.loads(delivery.payload)
    what = "Safety alert" if payload["kind"] == "alert" else "Protocol deviation"
    message = EmailMessage()
    message["From"] = smtp.sender
    message["To"] = delivery.target
    message["Subject"] = (
        f"[TrialGuard {payload['study_id']}] {what} {payload['rule_id']}: participant {payload['participant_id']}"
        f" at site {payload['site_id']}"
    )
    message["Message-ID"] = f"<{delivery.finding_id}.{delivery.subscription_id}@trialguard>"
    message[DELIVERY_HEADER] = delivery.delivery_id
    lines = [f"{what} {payload['rule_id']} ({payload['protocol_reference']}, protocol v{payload['protocol_version']})"]
    lines += [payload["term"], ""]
    for label, key in (
        ("Participant", "participant_id"),
        ("Site", "site_id"),
        ("Severity", "severity"),
        ("Category", "category"),
        ("Occurred", "occurred_at"),
        ("Finding", "finding_id"),
    ):
        if payload.get(key):
            lines.append(f"{label}: {payload[key]}")
    if settings.dashboard_url:
        lines += ["", f"Open it: {settings.dashboard_url.rstrip('/')}/findings/{delivery.finding_id}"]
    lines += ["", f"Subscription {delivery.subscription_id}: `trialguard notify remove {delivery.subscription_id}`"]
    message.set_content("\n".join(lines))
    return message


async def send_email(delivery: Delivery, smtp: SmtpSettings, settings: DeliverySettings) -> None:
    """Hand the email to the relay; accepted for the recipient is success."""
    try:
        _, refused_message = await aiosmtplib.send(
            email_message(delivery, smtp, settings),
            hostname=smtp.host,
            port=smtp.port,
            start_tls=smtp.starttls,
            username=smtp.username,
            password=smtp.password,
            timeout=settings.timeout_seconds,
        )
    except aiosmtplib.SMTPResponseException as error:
        raise DeliveryError(f"SMTP {error.code}") from None
    except (aiosmtplib.SMTPException, OSError) as error:
        raise DeliveryError(type(error).__name__) from None
    del refused_message
