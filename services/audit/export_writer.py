"""Writing a format 2 export (docs/audit-format.md): the header, each partition's records with
their chain values, and the signed manifest, from a broker, a plain event log or another export."""

from __future__ import annotations

from pathlib import Path
from typing import IO

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.files import atomic_text
from services.ledger.chain_v2 import ChainV2, Headers
from services.ledger.export_format import ExportFormatError
from services.ledger.export_v2 import Manifest, RecordV2, header_line, manifest_line, parse_v2, record_line
from services.ledger.signing_v2 import sign_manifest


class ExportWriter:
    """Writes one topic's partitions, in ascending order, to an open text file.

    Args:
        f: the file (``atomic_text``: it appears complete or not at all).
        study: the study id the manifest names.
        topic: the topic.
    """

    def __init__(self, f: IO[str], study: str, topic: str) -> None:
        self._f = f
        self.study = study
        self.topic = topic
        self.chains: list[ChainV2] = []
        f.write(header_line() + "\n")

    def partition(self, partition: int) -> None:
        """Start the next partition (every partition of the topic, empty ones too, in ascending order).

        Raises:
            ValueError: not after the previous partition.
        """
        if self.chains and partition <= self.chains[-1].partition:
            raise ValueError(f"partition {partition} after partition {self.chains[-1].partition}")
        self.chains.append(ChainV2(self.topic, partition))

    def record(
        self,
        offset: int,
        timestamp_type: int,
        timestamp_ms: int,
        key: bytes | None,
        value: bytes | None,
        headers: Headers = (),
    ) -> None:
        """Chain and write the next record of the current partition."""
        chain = self.chains[-1]
        head = chain.append(offset, timestamp_type, timestamp_ms, key, value, headers)
        line = RecordV2(
            self.topic,
            chain.partition,
            offset,
            timestamp_type,
            timestamp_ms,
            key,
            value,
            tuple(headers),
            head.hex(),
        )
        self._f.write(record_line(line) + "\n")

    def finish(self, partition_count: int, private_key: Ed25519PrivateKey) -> Manifest:
        """Sign and write the manifest of every partition written."""
        positions = [chain.position() for chain in self.chains]
        manifest = sign_manifest(self.study, self.topic, partition_count, positions, private_key)
        self._f.write(manifest_line(manifest) + "\n")
        return manifest

    @property
    def records(self) -> int:
        """Records written so far."""
        return sum(chain.count for chain in self.chains)


def resign_v2(source: Path, out: Path, private_key: Ed25519PrivateKey) -> Manifest:
    """A format 2 export signed again with another key, after checking every chain value.

    The study, topic and partition count are taken from the source's manifest (its signature is
    not checked: the old public key may be gone; the records and chain values are).

    Raises:
        ExportFormatError: a malformed line, a chain value that does not follow, or no manifest.
    """
    old: Manifest | None = None
    number = 0
    with source.open("rb") as src, atomic_text(out) as f:
        writer: ExportWriter | None = None
        for number, raw in enumerate(src, 1):
            line = parse_v2(raw.decode("utf-8", "replace"), number)
            if isinstance(line, Manifest):
                old = line
            elif isinstance(line, RecordV2):
                if writer is None:
                    writer = ExportWriter(f, "", line.topic)
                try:
                    if not writer.chains or writer.chains[-1].partition != line.partition:
                        writer.partition(line.partition)
                    writer.record(
                        line.offset, line.timestamp_type, line.timestamp_ms, line.key, line.value, line.headers
                    )
                except ValueError as e:
                    raise ExportFormatError(number, str(e)) from None
                if writer.chains[-1].head.hex() != line.chain:
                    raise ExportFormatError(number, "chain value does not follow from the records before it")
        if old is None:
            raise ExportFormatError(number + 1, "the export has no manifest")
        if writer is None:
            writer = ExportWriter(f, old.study, old.topic)
        writer.study = old.study
        done = {chain.partition for chain in writer.chains}
        # Empty partitions have no record line; the manifest lists them.
        for position in old.positions:
            if position.partition not in done:
                writer.chains.append(ChainV2(old.topic, position.partition))
        writer.chains.sort(key=lambda chain: chain.partition)
        return writer.finish(old.partition_count, private_key)
