"""What a verified audit export holds, and the error of one that does not hold (any format)."""

from __future__ import annotations

from dataclasses import dataclass, field

from services.ledger.export_format import ExportedCheckpoint
from services.ledger.export_v2 import Manifest


class VerificationError(Exception):
    """An export does not hold: the first line that breaks, and why.

    Attributes:
        line: 1-based line number (one past the last line when the end is missing).
        reason: what does not hold.
    """

    def __init__(self, line: int, reason: str) -> None:
        super().__init__(f"line {line}: {reason}")
        self.line = line
        self.reason = reason


@dataclass
class Verified:
    """What a verified export holds.

    Attributes:
        records: record lines.
        checkpoints: the checkpoints, by (topic, partition).
        heads: every partition's format 1 chain value after each record, by (topic, partition):
            the n-th entry is ``h_{n+1}``, to compare live checkpoints against (a format 2 export
            computes them too, for format 1 checkpoints written before an upgrade).
        format: the export's format (docs/audit-format.md).
        offsets: every partition's record offsets in order, by (topic, partition).
        heads_v2: like ``heads``, the format 2 chain (a format 2 export only).
        manifest: a format 2 export's verified manifest.
    """

    records: int = 0
    checkpoints: dict[tuple[str, int], ExportedCheckpoint] = field(default_factory=dict)
    heads: dict[tuple[str, int], list[str]] = field(default_factory=dict)
    format: int = 1
    offsets: dict[tuple[str, int], list[int]] = field(default_factory=dict)
    heads_v2: dict[tuple[str, int], list[str]] = field(default_factory=dict)
    manifest: Manifest | None = None

    @property
    def partitions(self) -> int:
        """Partitions the export holds (empty ones included)."""
        return len(self.manifest.positions) if self.manifest is not None else len(self.checkpoints)
