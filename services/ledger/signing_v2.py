"""Signing and checking format 2 checkpoints and manifests (Ed25519, docs/audit-format.md)."""

from __future__ import annotations

from collections.abc import Sequence

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from services.ledger.chain_v2 import ChainV2, PartitionPosition, checkpoint_message, manifest_message
from services.ledger.export_v2 import CheckpointV2, Manifest
from services.ledger.keys import key_id


def sign_checkpoint(chain: ChainV2, private_key: Ed25519PrivateKey) -> CheckpointV2:
    """A signed checkpoint of ``chain`` as it stands."""
    kid = key_id(private_key.public_key())
    position = chain.position()
    return CheckpointV2(chain.topic, position, kid, private_key.sign(checkpoint_message(chain.topic, position, kid)))


def sign_manifest(
    study: str, topic: str, partition_count: int, positions: Sequence[PartitionPosition], private_key: Ed25519PrivateKey
) -> Manifest:
    """The signed manifest of an export holding ``positions``."""
    kid = key_id(private_key.public_key())
    message = manifest_message(study, topic, partition_count, positions, kid)
    return Manifest(study, topic, partition_count, tuple(positions), kid, private_key.sign(message))


def _verify(public_key: Ed25519PublicKey, signature: bytes, message: bytes, named: str, expected: str) -> str | None:
    if named != expected:
        return f"names key {named[:16]}…, not the given public key {expected[:16]}…"
    try:
        public_key.verify(signature, message)
    except InvalidSignature:
        return "signature does not verify with the given public key"
    return None


def check_checkpoint(checkpoint: CheckpointV2, public_key: Ed25519PublicKey) -> str | None:
    """Why a format 2 checkpoint's signature does not hold, or None when it does."""
    message = checkpoint_message(checkpoint.topic, checkpoint.position, checkpoint.key_id)
    return _verify(public_key, checkpoint.signature, message, checkpoint.key_id, key_id(public_key))


def check_manifest(manifest: Manifest, public_key: Ed25519PublicKey) -> str | None:
    """Why a manifest's signature does not hold, or None when it does."""
    message = manifest_message(
        manifest.study, manifest.topic, manifest.partition_count, manifest.positions, manifest.key_id
    )
    return _verify(public_key, manifest.signature, message, manifest.key_id, key_id(public_key))
