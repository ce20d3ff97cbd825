"""Identifiers of simulated events: deterministic uuid5s, so the same seed gives the same ids."""

from __future__ import annotations

import hashlib
import uuid

MAX_SEED = 10**18
"""Seeds are part of participant ids (``S{seed}-00001``), which the contract keeps to 64 characters."""

EVENT_NAMESPACE = uuid.UUID("0c5e0b53-7d0e-4f7b-9a55-8f0e3d4c2a61")
"""uuid5 namespace of simulated event ids (with the seed, the participant and their sequence number)."""

_NAMESPACE_HASH = hashlib.sha1(EVENT_NAMESPACE.bytes, usedforsecurity=False)


def event_id(seed: int, participant_id: str, number: int) -> str:
    """The id of a participant's ``number``-th event: ``uuid5(EVENT_NAMESPACE, "seed/participant/number")``,
    computed without building a UUID object (it is the same string ``str(uuid.uuid5(...))`` gives)."""
    digest = _NAMESPACE_HASH.copy()
    digest.update(f"{seed}/{participant_id}/{number}".encode())
    raw = bytearray(digest.digest()[:16])
    raw[6] = (raw[6] & 0x0F) | 0x50
    raw[8] = (raw[8] & 0x3F) | 0x80
    x = raw.hex()
    return f"{x[:8]}-{x[8:12]}-{x[12:16]}-{x[16:20]}-{x[20:]}"
