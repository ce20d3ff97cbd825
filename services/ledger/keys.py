"""Ed25519 signing keys for audit checkpoints: making, naming and loading them (``trialguard audit keygen``
in services/audit/keygen.py).

The private key is PEM PKCS#8 (unencrypted: the export runs unattended; the file's 0600 mode and
where it is kept protect it), the public key PEM SubjectPublicKeyInfo in ``KEYFILE.pub``. A key
is named by its key id, the hex SHA-256 of the 32 raw public key bytes, which every checkpoint
carries.
"""

from __future__ import annotations

import errno
import hashlib
import os
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey


class KeyFileError(Exception):
    """A key file is missing, unreadable, or not an Ed25519 key of the expected kind."""


def key_id(public_key: Ed25519PublicKey) -> str:
    """The id of a key: hex SHA-256 of its raw 32-byte public key."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def public_path(private_path: Path) -> Path:
    """Where keygen writes the public key of ``private_path``: the same name plus ``.pub``."""
    return private_path.with_name(private_path.name + ".pub")


def generate(out: Path) -> tuple[Path, str]:
    """Write a new Ed25519 private key to ``out`` (mode 0600) and its public key to ``out.pub``.

    Returns:
        The public key path and the key id.

    Raises:
        FileExistsError: ``out`` or ``out.pub`` exists already; nothing is overwritten.
    """
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public = private.public_key()
    pub_pem = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    pub_path = public_path(out)
    if pub_path.exists():
        raise FileExistsError(errno.EEXIST, "exists already", str(pub_path))
    # O_EXCL: refuse to overwrite even when the file appears between a check and the write;
    # the mode is given at creation so the key is never readable by others, not even briefly.
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    fd = os.open(pub_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(pub_pem)
    return pub_path, key_id(public)


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """The Ed25519 private key in a PEM file.

    Raises:
        KeyFileError: the file cannot be read or holds no unencrypted Ed25519 private key.
    """
    try:
        data = path.read_bytes()
    except OSError as e:
        raise KeyFileError(f"{path}: cannot read the private key ({e.strerror})") from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as e:
        raise KeyFileError(f"{path}: not an unencrypted PEM private key ({e})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(f"{path}: not an Ed25519 private key")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    """The Ed25519 public key in a PEM file (a private key file is refused: hand verifiers the .pub).

    Raises:
        KeyFileError: the file cannot be read or holds no Ed25519 public key.
    """
    try:
        data = path.read_bytes()
    except OSError as e:
        raise KeyFileError(f"{path}: cannot read the public key ({e.strerror})") from None
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError, UnsupportedAlgorithm) as e:
        raise KeyFileError(f"{path}: not a PEM public key ({str(e)[:80]})") from None
    if not isinstance(key, Ed25519PublicKey):
        raise KeyFileError(f"{path}: not an Ed25519 public key")
    return key
