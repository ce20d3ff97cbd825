"""What a subscription is, and the checks a new one must pass.

A subscription belongs to a dashboard user (its owner) and asks for the findings of one study,
optionally only of one kind, some rules or one site, by email or webhook. The owner's role
bounds it: a site user's subscription gets its own site's findings only, whatever it asks for.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

import httpx


class SubscriptionError(ValueError):
    """A subscription that cannot be made or found; the message says what and where."""


class Channel(StrEnum):
    """How a subscriber is told."""

    EMAIL = "email"
    WEBHOOK = "webhook"


class Kind(StrEnum):
    """The kind of finding: a protocol deviation or a safety alert."""

    DEVIATION = "deviation"
    ALERT = "alert"


RULE_PATTERN: Final = re.compile(r"[A-Z][A-Z0-9-]{0,39}")
"""A rule id as the protocols write them (CONSENT-01, SAFETY-SAE)."""
SITE_PATTERN: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:\-]{0,63}")
"""A site id: the contract's identifier."""
EMAIL_PATTERN: Final = re.compile(r"[^@\s<>\",;]{1,64}@[A-Za-z0-9.-]{1,190}\.?[A-Za-z0-9-]*")
"""An address without display name, comments or a second recipient: exactly one mailbox."""


@dataclass(frozen=True)
class Owner:
    """The dashboard user a subscription belongs to, as the notifier needs them.

    Attributes:
        name: the user name.
        site: the only site whose findings the user may see (a site user); None for every site.
    """

    name: str
    site: str | None


@dataclass(frozen=True)
class Subscription:
    """One subscriber's standing request.

    Attributes:
        subscription_id: random, stable; part of every delivery's id.
        owner: the dashboard user it belongs to.
        channel: email or webhook.
        target: the mailbox or the https/http URL.
        study_id: the study whose findings it gets.
        kind: only deviations or only alerts (None: both).
        rules: only these rule ids (empty: every rule).
        site: only this site (None: every site the owner may see).
        secret: the webhook's HMAC key (None for email).
        created_at: when it was made (Unix seconds): findings published before are not sent.
    """

    subscription_id: str
    owner: str
    channel: Channel
    target: str
    study_id: str
    kind: Kind | None = None
    rules: tuple[str, ...] = ()
    site: str | None = None
    secret: str | None = None
    created_at: float = 0.0


def check_target(channel: Channel, target: str) -> str:
    """The target, checked for its channel.

    Raises:
        SubscriptionError: not one mailbox (email), or not an absolute http(s) URL without
            credentials (webhook).
    """
    if channel is Channel.EMAIL:
        if not EMAIL_PATTERN.fullmatch(target):
            raise SubscriptionError(f"--email {target[:80]!r}: one address, name@domain, without a display name")
        return target
    try:
        url = httpx.URL(target)
    except httpx.InvalidURL as error:
        raise SubscriptionError(f"--webhook {target[:80]!r}: not a URL ({error})") from None
    if url.scheme not in ("https", "http") or not url.host:
        raise SubscriptionError(f"--webhook {target[:80]!r}: an absolute http:// or https:// URL is needed")
    if url.userinfo:
        raise SubscriptionError("--webhook: put no user or password in the URL; the payload is signed instead")
    return target


def check_filters(kind: str | None, rules: list[str], site: str | None) -> tuple[Kind | None, tuple[str, ...]]:
    """The kind and rules, checked.

    Raises:
        SubscriptionError: an unknown kind, a rule or site id that cannot exist.
    """
    try:
        checked_kind = None if kind is None else Kind(kind)
    except ValueError:
        raise SubscriptionError(f"--kind {str(kind)[:40]!r}: one of deviation, alert") from None
    for rule in rules:
        if not RULE_PATTERN.fullmatch(rule):
            raise SubscriptionError(f"--rule {rule[:60]!r}: a rule id such as CONSENT-01 or SAFETY-SAE")
    if site is not None and not SITE_PATTERN.fullmatch(site):
        raise SubscriptionError(f"--site {site[:80]!r}: 1-64 of A-Z a-z 0-9 _ . : -, starting with a letter or digit")
    return checked_kind, tuple(sorted(set(rules)))


def scoped_site(owner: Owner | None, owner_name: str, site: str | None) -> str | None:
    """The site filter a new subscription gets from its owner: a site user's own site.

    Raises:
        SubscriptionError: the owner is unknown, or a site user asks for another site.
    """
    if owner is None:
        raise SubscriptionError(f"--user {owner_name[:64]!r}: no such dashboard user (add them with `users add`)")
    if owner.site is None:
        return site
    if site is not None and site != owner.site:
        raise SubscriptionError(f"--site {site[:64]!r}: user {owner.name} sees site {owner.site} only")
    return owner.site
