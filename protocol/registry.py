"""The protocols TrialGuard knows, by study id."""

from __future__ import annotations

from protocol.model import Protocol
from protocol.nct06904729 import PROTOCOL as NCT06904729

PROTOCOLS: dict[str, Protocol] = {p.study_id: p for p in (NCT06904729,)}


class UnknownStudyError(KeyError):
    """No protocol is defined for this study id."""


def protocol_for(study_id: str) -> Protocol:
    """The protocol of a study.

    Raises:
        UnknownStudyError: no protocol is defined for it.
    """
    try:
        return PROTOCOLS[study_id]
    except KeyError:
        raise UnknownStudyError(f"no protocol for study {study_id!r}; known: {', '.join(sorted(PROTOCOLS))}") from None
