"""Static group membership (KIP-345) for the rules service: a stable instance id per process.

With an instance id (``trialguard rules serve --instance-id NAME``) the consumer joins its
study's group as a static member: a restarted process that rejoins under the same id gets its
previous partitions back at once, without a rebalance, so the other instances keep theirs (no
revocation, no restore) and the restarted one does not wait for its dead predecessor's session
to time out. The group differs per study (``rules_group_id``), so one name serves every study of
a process.

The costs: a static member does not leave the group when it stops (aiokafka sends no LeaveGroup
for one), so the partitions of an instance that is stopped for good wait a session timeout
before the group moves them on; and two live processes under one id fence each other. Kafka's
rule is that the newest join wins: the broker gives the id to the process that joined last, and
the older one is told its member id is unknown. aiokafka (whose heartbeat predates the instance
id) would then simply rejoin under the same id and take it back, and the two would take turns
for good. So at each revocation a static member looks whether its id is held by another live
process (``held_elsewhere``: a member under its id other than the one it was at its last
join); if so it gives its partitions up and stops (``InstanceIdInUseError``) without
rejoining. Exactly-once does not depend on this: each partition's transactional id
fences whichever process wrote it before, and a take-over restores from what was committed.
"""

from __future__ import annotations

import re

import structlog
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient

from services.errors import ConfigurationError
from services.kafka import KafkaSettings

log = structlog.get_logger("trialguard.rules")

INSTANCE_ID = re.compile(r"[A-Za-z0-9._-]{1,100}")
"""What an instance id may be: it goes into the group's member ids and the client id."""

CLIENT_ID = "trialguard-rules"
"""The consumer's client id, followed by ``-<instance id>`` for a static member (broker logs, quotas)."""

STATIC_SESSION_TIMEOUT_MS = 30_000
"""The session timeout of a static member unless TRIALGUARD_SESSION_TIMEOUT_MS says otherwise
(a dynamic member's is 10 s): the time a restart has to come back without any rebalance. A
restart on a busy two-core machine was measured at 7-13 s from SIGKILL to ready, so 10 s would
let the broker expire the member and rebalance anyway; the price is that an instance gone for
good holds its partitions this long."""

DESCRIBE_SECONDS = 10.0
"""How long the look at the group's members may take; when it cannot be had, the member rejoins."""


class InstanceIdInUseError(ConfigurationError):
    """Another live process joined the group under this process's instance id."""


class Superseded(BaseException):
    """Raised from the revocation callback when the instance id is held elsewhere: a
    BaseException so that aiokafka's coordinator does not catch it and rejoin (which would take
    the id back from the newer process); it ends the coordinator's task. The service's fetch
    loop is cancelled beside it (the consumer would leave it waiting for an assignment)."""


def check_instance_id(name: str | None) -> str | None:
    """The instance id as given, None for none (an empty value is none).

    Raises:
        ConfigurationError: not 1-100 of A-Z a-z 0-9 . _ -
    """
    if not name:
        return None
    if not INSTANCE_ID.fullmatch(name):
        raise ConfigurationError(
            f"--instance-id {name[:100]!r}: an instance id is 1-100 of A-Z a-z 0-9 . _ - (env TRIALGUARD_INSTANCE_ID)"
        )
    return name


def member_id_of(consumer: AIOKafkaConsumer) -> str | None:
    """The member id the broker gave ``consumer`` at its last join (None: unknown). aiokafka has
    no public accessor; its coordinator's attribute is read with care."""
    coordinator = getattr(consumer, "_coordinator", None)
    member_id = getattr(coordinator, "member_id", None)
    return member_id if isinstance(member_id, str) and member_id else None


async def held_elsewhere(settings: KafkaSettings, group_id: str, instance_id: str, member_id: str) -> bool:
    """Whether ``instance_id`` is held in ``group_id`` by a member other than ``member_id`` (this
    process's, as of its last join).

    The broker names a static member ``<instance id>-<uuid>`` and gives a process that joins
    under a held id a new member id (DescribeGroups as aiokafka speaks it carries neither the
    instance id nor a client id of the newcomer's: the broker keeps the first one's). One id may
    begin another's (``rules`` and ``rules-a``): a member id of the same length as ours says the
    same instance id. A look that fails says False: the member rejoins, as it would without the
    look, and the next revocation looks again.
    """
    admin = AIOKafkaAdminClient(**settings.client_kwargs(), request_timeout_ms=int(DESCRIBE_SECONDS * 1000))
    try:
        await admin.start()
        described = await admin.describe_consumer_groups([group_id])
    except Exception as e:
        log.warning("group_undescribed", group_id=group_id, error=type(e).__name__)
        return False
    finally:
        await admin.close()
    for response in described:
        for group in response.groups:
            for member in group[5]:  # error, group, state, protocol type, protocol, members, …
                other: str = member[0]
                if other != member_id and other.startswith(f"{instance_id}-") and len(other) == len(member_id):
                    return True
    return False
