"""Signing a chain's checkpoint with an Ed25519 key, and checking a checkpoint's signature."""

from __future__ import annotations

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from services.ledger.chain import Chain, checkpoint_message
from services.ledger.export_format import ExportedCheckpoint
from services.ledger.keys import key_id


def sign(chain: Chain, private_key: Ed25519PrivateKey) -> ExportedCheckpoint:
    """A signed checkpoint of ``chain`` as it stands."""
    kid = key_id(private_key.public_key())
    return ExportedCheckpoint(
        topic=chain.topic,
        partition=chain.partition,
        last_offset=chain.last_offset,
        count=chain.count,
        head=chain.head.hex(),
        key_id=kid,
        signature=private_key.sign(chain.message(kid)),
    )


def check_signature(checkpoint: ExportedCheckpoint, public_key: Ed25519PublicKey, expected_key_id: str) -> str | None:
    """Why a checkpoint's signature does not hold, or None when it does."""
    if checkpoint.key_id != expected_key_id:
        return f"checkpoint names key {checkpoint.key_id[:16]}…, not the given public key {expected_key_id[:16]}…"
    message = checkpoint_message(
        checkpoint.topic,
        checkpoint.partition,
        checkpoint.last_offset,
        checkpoint.count,
        checkpoint.head,
        checkpoint.key_id,
    )
    try:
        public_key.verify(checkpoint.signature, message)
    except InvalidSignature:
        return "the checkpoint's signature does not verify with the given public key"
    return None
