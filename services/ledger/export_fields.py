"""The field checks both export formats share: each names the line and the field it refuses.

Kafka's partitions are int32 and its offsets and timestamps int64; the canonical record encodes
them as such, so a larger number is refused rather than wrapped.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

HEX_DIGEST = re.compile(r"[0-9a-f]{64}")


class ExportFormatError(ValueError):
    """A line of an export file is not a well-formed record or checkpoint line.

    Attributes:
        line: the 1-based line number.
        reason: what is wrong with it.
    """

    def __init__(self, line: int, reason: str) -> None:
        super().__init__(f"line {line}: {reason}")
        self.line = line
        self.reason = reason


def _check_fields(obj: dict[str, Any], expected: set[str], number: int) -> None:
    missing = expected - obj.keys()
    extra = obj.keys() - expected
    if missing:
        raise ExportFormatError(number, f"missing field(s) {', '.join(sorted(missing))}")
    if extra:
        raise ExportFormatError(number, f"unexpected field(s) {', '.join(sorted(k[:40] for k in extra))}")


def _str(obj: dict[str, Any], name: str, number: int) -> str:
    value = obj[name]
    if not isinstance(value, str) or not value:
        raise ExportFormatError(number, f"{name} is not a non-empty string")
    return value


INT64_MAX = 2**63 - 1
PARTITION_MAX = 2**31 - 1


def _int(obj: dict[str, Any], name: str, number: int, minimum: int = 0) -> int:
    value = obj[name]
    maximum = PARTITION_MAX if name == "partition" else INT64_MAX
    # bool is an int in Python; true is no offset.
    if type(value) is not int or not minimum <= value <= maximum:
        raise ExportFormatError(number, f"{name} is not an integer from {minimum} to {maximum}")
    return value


def _bytes(obj: dict[str, Any], name: str, number: int) -> bytes:
    value = obj[name]
    if not isinstance(value, str):
        raise ExportFormatError(number, f"{name} is not a base64 string")
    try:
        # validate=True: a stray character must not be silently dropped from what is hashed.
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ExportFormatError(number, f"{name} is not valid base64") from None


def _digest(obj: dict[str, Any], name: str, number: int) -> str:
    value = obj[name]
    if not isinstance(value, str) or not HEX_DIGEST.fullmatch(value):
        raise ExportFormatError(number, f"{name} is not 64 lowercase hex digits")
    return value
