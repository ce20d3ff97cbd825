"""The one error that input breaking the wire contract raises."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Violation:
    """One broken clause of the contract: where (a dotted field path), what kind, and what.

    ``problem`` may quote the offending input; ``kind`` never does, so logs use ``kind``.
    """

    field: str
    problem: str
    kind: str = "invalid"

    def __str__(self) -> str:
        return f"{self.field}: {self.problem}"


class ContractError(ValueError):
    """Input that is not a contract-v1 event.

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
        super().__init__("; ".join(str(v) for v in violations))

    def summary(self) -> str:
        """Fields and kinds of the violations, without input values: safe to log."""
        return ", ".join(f"{v.field}:{v.kind}" for v in self.violations)

    @property
    def field(self) -> str:
        """The field of the first violation."""
        return self.violations[0].field

    @property
    def problem(self) -> str:
        """The problem of the first violation."""
        return self.violations[0].problem
