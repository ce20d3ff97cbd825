"""The webhook signature: HMAC-SHA256 over the timestamp and the exact body, keyed with the
subscription's secret, so a receiver can tell a TrialGuard delivery from a forged one and a fresh
one from a replay.

Headers of every delivery:

- ``X-TrialGuard-Delivery``: ``<subscription id>/<finding id>``, the same on every retry (the
  receiver's idempotency key).
- ``X-TrialGuard-Timestamp``: Unix seconds when this attempt was signed.
- ``X-TrialGuard-Signature``: ``sha256=`` and the hex HMAC-SHA256 of ``<timestamp>.<body>``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

DELIVERY_HEADER = "X-TrialGuard-Delivery"
TIMESTAMP_HEADER = "X-TrialGuard-Timestamp"
SIGNATURE_HEADER = "X-TrialGuard-Signature"
PREFIX = "sha256="


def new_secret() -> str:
    """A webhook secret: 256 random bits, URL-safe text."""
    return secrets.token_urlsafe(32)


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The ``X-TrialGuard-Signature`` value of ``body`` signed at ``timestamp``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return PREFIX + mac.hexdigest()


def verify(secret: str, timestamp_header: str, signature_header: str, body: bytes) -> bool:
    """Whether a delivery's signature is right (constant-time); a receiver also checks that the
    timestamp is recent (e.g. within 5 minutes) to refuse replays."""
    try:
        timestamp = int(timestamp_header)
    except ValueError:
        return False
    return hmac.compare_digest(signature(secret, timestamp, body), signature_header)
