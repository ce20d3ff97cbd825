"""``trialguard audit keygen``: a new Ed25519 key pair that signs export checkpoints."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import structlog

from services.ledger.keys import generate

log = structlog.get_logger("trialguard.audit.keys")


def _keygen(args: argparse.Namespace) -> int:
    out = Path(args.out)
    try:
        pub_path, kid = generate(out)
    except FileExistsError as e:
        print(f"trialguard audit keygen: {e.filename}: exists already; not overwritten", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"trialguard audit keygen: {e.filename}: {e.strerror}", file=sys.stderr)
        return 2
    log.info("audit key generated", key_id=kid)
    print(f"private key: {out} (mode 0600; keep it secret)")
    print(f"public key:  {pub_path}")
    print(f"key id:      {kid}")
    return 0


def add_commands(audit: argparse._SubParsersAction[Any], export: argparse._SubParsersAction[Any]) -> None:
    """Register ``trialguard audit keygen``."""
    del export  # keygen is an audit command only
    keygen = audit.add_parser(
        "keygen",
        help="make an Ed25519 key pair that signs export checkpoints",
        description="Write a new Ed25519 private key (PEM PKCS#8, mode 0600) to KEYFILE and its public key to "
        "KEYFILE.pub, then print both paths and the key id (hex SHA-256 of the raw public key). An existing "
        "file is never overwritten. Exit status: 0 written, 2 a file exists or cannot be written.",
    )
    keygen.add_argument("--out", required=True, metavar="KEYFILE", help="the private key file to create")
    keygen.set_defaults(run=_keygen, sync=True)
