"""The protocols TrialGuard knows, by study id: each study's versions, in order.

NCT06904729's registry record shows no amendment: v1.0 is its only version, in force from the
beginning.
"""

from __future__ import annotations

from protocol.model import Protocol
from protocol.nct06904729 import PROTOCOL as NCT06904729
from protocol.versions import ProtocolHistory, Version

HISTORIES: dict[str, ProtocolHistory] = {h.study_id: h for h in (ProtocolHistory([Version(NCT06904729)]),)}

PROTOCOLS: dict[str, Protocol] = {study: h.current for study, h in HISTORIES.items()}
"""The current (latest) version of each study's protocol."""


class UnknownStudyError(KeyError):
    """No protocol is defined for this study id."""


def versions_for(study_id: str) -> ProtocolHistory:
    """The versions of a study's protocol, with the dates they take effect.

    Raises:
        UnknownStudyError: no protocol is defined for it.
    """
    try:
        return HISTORIES[study_id]
    except KeyError:
        raise UnknownStudyError(f"no protocol for study {study_id!r}; known: {', '.join(sorted(HISTORIES))}") from None


def protocol_for(study_id: str) -> Protocol:
    """The current (latest) version of a study's protocol.

    Raises:
        UnknownStudyError: no protocol is defined for it.
    """
    return versions_for(study_id).current
