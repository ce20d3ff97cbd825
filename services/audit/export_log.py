"""An audit export made from a plain JSON-lines event log, without a broker
(``trialguard export events --events LOG``).

The log's lines become the records of one partition (0) of the study's participant-events topic,
at the positions the log gives them: a line's offset is its 0-based line number, so a blank line
(skipped) leaves a gap as a transaction marker does. A plain log has no Kafka key, timestamp or
headers: the key and headers are null and empty, the timestamp -1 with timestamp type -1 (Kafka's
"no timestamp"), and each value is the line's exact bytes (without its newline).
"""

from __future__ import annotations

import json
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.audit.export_writer import ExportWriter
from services.files import atomic_text
from services.ledger.chain_v2 import NO_TIMESTAMP_TYPE
from services.ledger.export_format import ExportFormatError
from services.ledger.export_v2 import Manifest


def export_log(source: Path, out: Path, study: str, topic: str, private_key: Ed25519PrivateKey) -> Manifest:
    """Write a signed format 2 export of the plain event log ``source`` to ``out``.

    Raises:
        ExportFormatError: a line is not a JSON object (named by its number); nothing is written.
        OSError: a file cannot be read or written.
    """
    with source.open("rb") as src, atomic_text(out) as f:
        writer = ExportWriter(f, study, topic)
        writer.partition(0)
        for index, raw in enumerate(src):
            value = raw[:-1] if raw.endswith(b"\n") else raw
            if not value.strip():
                continue
            try:
                event = json.loads(value)
            except ValueError:
                raise ExportFormatError(index + 1, "not a JSON line of the event log") from None
            if not isinstance(event, dict):
                raise ExportFormatError(index + 1, "not a JSON object (an event of the log)")
            if event.get("kind") in ("header", "record", "checkpoint", "manifest"):
                raise ExportFormatError(index + 1, "an audit export's line, not an event: give a plain event log")
            writer.record(index, NO_TIMESTAMP_TYPE, -1, None, value)
        return writer.finish(1, private_key)
