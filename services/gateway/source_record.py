"""A registered source (lab system) as the gateway sees it, and what the source store shares.

``Source`` (one registered upstream system), the networks it may send MLLP from
(``parse_networks``, ``address_in``), the identifier patterns its fields must match, the
``SourceError`` the store raises and the ``ChangeRecorder`` it records changes with. The store
itself is ``services.gateway.sources``, which re-exports these.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final, Literal, Protocol

from contracts import AccessAction
from services.defaults import DEFAULT_STUDY

IDENTIFIER: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:\-]{0,63}")
"""The contract's ``Identifier``: a source's name becomes ``source.system`` of its events, and its
site their ``site_id``."""

HL7_NAMESPACE: Final = re.compile(r"[^|^~\\&\r\n]{1,180}")
"""An HL7 v2 HD namespace id (MSH-3, MSH-4): no delimiter characters."""


def parse_networks(values: Iterable[str]) -> tuple[str, ...]:
    """Addresses or networks (``10.0.0.5``, ``10.0.0.0/24``, ``2001:db8::/32``), normalized.

    Raises:
        SourceError: a value that is neither, saying which.
    """
    networks: list[str] = []
    for value in values:
        try:
            network = ipaddress.ip_network(value.strip(), strict=False)
        except ValueError:
            raise SourceError(f"--mllp-allow {value[:80]!r}: an IP address or network, such as 10.0.0.5/32") from None
        if str(network) not in networks:
            networks.append(str(network))
    return tuple(networks)


def address_in(address: str, networks: Iterable[str]) -> bool:
    """Whether an IP address is in one of the networks (an address that is not one: never)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in ipaddress.ip_network(n) for n in networks)


class ChangeRecorder(Protocol):
    """Where a change is recorded: an :class:`AccessRecorder`, or one that records it in the
    access logs of several studies."""

    def record(
        self, action: AccessAction, subject_kind: Literal["user", "source"], subject: str, **fields: Any
    ) -> object:
        """Record one change; raise ``AccessLogError`` when it could not be."""
        ...


class SourceError(ValueError):
    """A source that cannot be added as asked."""


@dataclass(frozen=True)
class Source:
    """A registered upstream system.

    Attributes:
        name: the ``source.system`` of every event it publishes.
        site: the ``site_id`` of every event it publishes.
        hl7_application: MSH-3 of its HL7 v2 messages, when it sends any.
        hl7_facility: MSH-4 of its HL7 v2 messages, when it sends any.
        created_at: when it was added (ISO 8601, UTC).
        enabled: whether its key (and HL7 identity) is accepted.
        mllp_allow: the networks it may send MLLP from; none: it cannot use MLLP.
        time_zone: the IANA time zone its local times (without a UTC offset) are read in; None:
            such times are refused (``services.gateway.local_time``).
        strict: refuse a whole message that carries a result the study does not use; by default
            (False) such results are left out and acknowledged as not used by the study.
        studies: the studies it sends for (``services.gateway.routing``); events for any other
            study are refused.
    """

    name: str
    site: str
    hl7_application: str | None = None
    hl7_facility: str | None = None
    created_at: str = ""
    enabled: bool = True
    mllp_allow: tuple[str, ...] = ()
    time_zone: str | None = None
    strict: bool = False
    studies: tuple[str, ...] = (DEFAULT_STUDY,)

    def allows_mllp_from(self, address: str) -> bool:
        """Whether a peer at this address may send this source's messages over MLLP."""
        return address_in(address, self.mllp_allow)
