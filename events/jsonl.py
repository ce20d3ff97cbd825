"""The JSON-lines event log: one contract-v1 message per line, UTF-8, ``\\n``-terminated.

This is the file form of a topic (an export of participant-events, or the deviations a replay
writes). The one log adapter of ``events/`` that touches I/O, and only through streams it is given.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Protocol

from pydantic import BaseModel

from contracts import encode


class BinaryWriter(Protocol):
    """Anything with ``write(bytes)``: a binary file, ``sys.stdout.buffer``, ``io.BytesIO``."""

    def write(self, data: bytes, /) -> object: ...


def read_lines(stream: Iterable[bytes]) -> Iterator[tuple[int, bytes]]:
    """Iterate the messages of a JSON-lines log, one line at a time.

    Lines are neither decoded nor parsed here: a line that is not UTF-8 is the parser's to reject,
    with its line number. Blank lines are skipped but still counted, so numbers match an editor's.

    Args:
        stream: a binary stream opened for reading (iterating it yields lines, so a log of any
            size is read without holding it in memory).

    Yields:
        ``(line_number, message)``, numbered from 1, with the line ending (``\\n`` or ``\\r\\n``)
        removed. The last line may lack its newline.
    """
    for number, line in enumerate(stream, 1):
        message = line.rstrip(b"\r\n")
        if message.strip():
            yield number, message


def write_line(stream: BinaryWriter, model: BaseModel) -> None:
    """Append one model to a JSON-lines log, in the wire encoding (``contracts.encode``)."""
    stream.write(encode(model) + b"\n")


def write_lines(stream: BinaryWriter, models: Iterable[BaseModel]) -> int:
    """Append models to a JSON-lines log, one per line, in order.

    Returns:
        How many lines were written.
    """
    count = 0
    for model in models:
        write_line(stream, model)
        count += 1
    return count
