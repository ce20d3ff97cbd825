"""An enrollment names an arm its study's protocol declares: the guard for a trial-neutral arm.

Contract v1 carries the arm as an identifier (``Enrollment.arm``), since which arms exist is the
protocol's, not the wire's, to say. An arm the protocol version in force does not declare is
refused as input that breaks the contract, like a site mismatch (``events.sites``): the live
service dead-letters it, a replay reports and skips it, and the participant's state is left as it
was. Why a dead letter and not a deviation: an unknown arm is a data error upstream (a typo, or
another study's arm sent to this study's topic), not something the site did against the
protocol; no rule can decide the enrollment (no dose target, no arm-specific schedule), and
folding it would make every later finding of that participant rest on an arm that does not
exist. It is the same outcome an unknown arm had when v1 spelled the arms as a closed list, so
nothing changes for NCT06904729; the corrected enrollment is published again and decided then.
"""

from __future__ import annotations

from contracts import ContractError, ParticipantEvent, Violation
from contracts.participant_events import ParticipantEnrolled
from protocol.model import Protocol

UNKNOWN_ARM = "unknown_arm"
"""The violation kind (a bounded dead-letter reason, a metric label)."""


def check_arm(protocol: Protocol, event: ParticipantEvent) -> None:
    """Refuse an enrollment in an arm the protocol version does not declare.

    Raises:
        ContractError: one ``payload.arm`` violation of kind ``unknown_arm`` naming the arm, the
            study, the version and the arms it declares.
    """
    if not isinstance(event, ParticipantEnrolled):
        return
    arms = [arm.name for arm in protocol.arms]
    if event.payload.arm in arms:
        return
    problem = (
        f"arm {event.payload.arm!r} is not an arm of {protocol.study_id} v{protocol.version} "
        f"(expected one of: {', '.join(arms)})"
    )
    raise ContractError(
        [Violation("payload.arm", problem, UNKNOWN_ARM)], event_type=event.event_type, event_id=str(event.event_id)
    )
