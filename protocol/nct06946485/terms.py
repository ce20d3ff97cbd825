"""What one version of NCT06946485 decides with: its parameter values, by declaration."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from protocol.model import Parameter, Step
from protocol.nct06946485.design import STEPS
from protocol.nct06946485.parameters import FACT_DECIMALS, SCREENING_WINDOW_DAYS


class Terms:
    """One version's values, by parameter, and what is derived from them once.

    Raises:
        KeyError: a parameter a section reads is not among ``parameters``.
    """

    def __init__(self, parameters: Iterable[Parameter], steps: tuple[Step, ...] = STEPS) -> None:
        self._values: dict[str, Any] = {p.name: p.value for p in parameters}
        self.steps = steps
        self.after: dict[str, str] = {step.event_type: step.after for step in steps}
        self.decimals: int = self[FACT_DECIMALS]
        self.screening_window = dt.timedelta(days=self[SCREENING_WINDOW_DAYS])

    def __getitem__(self, parameter: Parameter) -> Any:
        """This version's value of a parameter.

        Raises:
            KeyError: the version has no parameter of that name.
        """
        try:
            return self._values[parameter.name]
        except KeyError:
            raise KeyError(f"NCT06946485: the version has no parameter {parameter.name!r}") from None

    def rounded(self, value: float) -> float:
        """A derived value as the rules compare it (see ``FACT_DECIMALS``)."""
        return round(value, self.decimals)
