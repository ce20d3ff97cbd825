"""The one error that input breaking the wire contract raises."""

from __future__ import annotations

from dataclasses import dataclass

from contracts.limits import MAX_PROBLEM_CHARS, MAX_REASON_CHARS, MAX_VIOLATIONS_SHOWN, clip, printable

MAX_FIELD_CHARS = 200
"""The longest field path of a violation (each part is bounded too, see ``contracts.limits``)."""


@dataclass(frozen=True)
class Violation:
    """One broken clause of the contract: where (a dotted field path), what kind, and what.

    ``problem`` may quote the offending input, as a bounded excerpt; ``kind`` never does. ``field``
    may hold a key the input chose (an unknown field, cut short); ``log_field`` is the same path
    with such keys replaced by ``<extra>`` (``field`` itself when not given). Logs use
    ``log_field`` and ``kind`` only (``ContractError.summary``). Field and problem are cut to a
    bounded length and escaped to printable text on construction, whoever builds the violation,
    so they fit a header and a log line; an empty field becomes ``<message>``.
    """

    field: str
    problem: str
    kind: str = "invalid"
    log_field: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "field", printable(clip(self.field, MAX_FIELD_CHARS)) or "<message>")
        object.__setattr__(self, "problem", printable(clip(self.problem, MAX_PROBLEM_CHARS)))
        object.__setattr__(self, "log_field", printable(clip(self.log_field or self.field, MAX_FIELD_CHARS)))

    def __str__(self) -> str:
        return f"{self.field}: {self.problem}"


class ContractError(ValueError):
    """Input that is not a contract-v1 event.

    Its text (``str(error)``, the dead-letter reason) spells out the first ten violations, counts
    the others, and is never longer than ``MAX_REASON_CHARS``, whatever the input.

    Attributes:
        violations: every problem found, each naming its field ("payload.weight_kg", or
            "<message>" when the bytes are not a JSON object at all).
        event_type: the event type the input claimed, when it could be read.
        event_id: the event id the input claimed, when it could be read.
    """

    def __init__(
        self,
        violations: list[Violation],
        *,
        event_type: str | None = None,
        event_id: str | None = None,
    ) -> None:
        self.violations = violations
        self.event_type = event_type
        self.event_id = event_id
        super().__init__(_bounded("; ", [str(v) for v in violations]))

    def summary(self) -> str:
        """Fields and kinds of the violations, without input values or unknown keys: safe to log."""
        return _bounded(", ", [f"{v.log_field}:{v.kind}" for v in self.violations])

    @property
    def field(self) -> str:
        """The field of the first violation."""
        return self.violations[0].field

    @property
    def problem(self) -> str:
        """The problem of the first violation."""
        return self.violations[0].problem


def _bounded(separator: str, items: list[str]) -> str:
    """The first ``MAX_VIOLATIONS_SHOWN`` items joined, the rest counted, in ``MAX_REASON_CHARS``."""
    more = len(items) - MAX_VIOLATIONS_SHOWN
    tail = f"{separator}and {more:,} more" if more > 0 else ""
    return clip(separator.join(items[:MAX_VIOLATIONS_SHOWN]), MAX_REASON_CHARS - len(tail)) + tail
