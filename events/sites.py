"""A participant belongs to its registered site: the guard every processing step runs first.

Why in the pure core and not only at the gateway: anyone who can produce to participant-events
(an EDC integration, a script with broker credentials, a misconfigured gateway) could otherwise
write into another site's participant and have findings raised, and shown, under the wrong site.
The step refuses such an event as input that breaks the contract, so the live service
dead-letters it and a replay reports and skips it alike: the same log decides the same way.
"""

from __future__ import annotations

from contracts import ContractError, ParticipantEvent, Violation
from protocol.state import ParticipantState

SITE_MISMATCH = "site_mismatch"
"""The violation kind (a bounded dead-letter reason, a metric label)."""


def registered_site(state: ParticipantState) -> str | None:
    """The site the participant is registered at, or None before its first registration.

    A registration at another site is refused by :func:`check_site`, so the first registration's
    site is the one that stands."""
    return None if state.registration is None else state.registration.site_id


def check_site(state: ParticipantState, event: ParticipantEvent) -> None:
    """Refuse an event for a registered participant that names another site.

    A second ``ParticipantRegistered`` at another site is refused too: a registration never
    re-homes a participant. Before the first registration any site passes (nothing to compare
    with yet).

    Raises:
        ContractError: one ``site_id`` violation of kind ``site_mismatch`` naming the participant
            and both sites.
    """
    site = registered_site(state)
    if site is None or event.site_id == site:
        return
    problem = f"{event.site_id!r} is not the site participant {event.participant_id!r} is registered at ({site!r})"
    raise ContractError(
        [Violation("site_id", problem, SITE_MISMATCH)], event_type=event.event_type, event_id=str(event.event_id)
    )
