"""What one version of NCT06904729 decides with: its parameter values, read by the section modules'
rule builders (``rules(terms)``, compiled into conditions) and fact derivations (bound to them).

Each version has its own ``Terms``, made once when the version is built (``build``), so a value
an amendment changes (a limit, a visit window, the screening window) is the value everything of
that version reads, and the version before it keeps its own. The declarations in
``parameters.py`` and ``design.py`` give names, units, sources and v1.0's values; a section asks
``terms[DECLARATION]`` for the value in force in its version, never ``DECLARATION.value``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from protocol.model import Parameter, Step, VisitWindow
from protocol.nct06904729.design import ARM_TARGETS, STEPS, VISIT_SCHEDULE
from protocol.nct06904729.parameters import FACT_DECIMALS, SCREENING_WINDOW_DAYS


class Terms:
    """One version's values, by parameter, and what is derived from them once.

    Args:
        parameters: every parameter of the version, with its value in the version.
        steps: the treatment sequence.

    Raises:
        KeyError: a parameter a section reads is not among ``parameters``.
    """

    def __init__(self, parameters: Iterable[Parameter], steps: tuple[Step, ...] = STEPS) -> None:
        self._values: dict[str, Any] = {p.name: p.value for p in parameters}
        self.steps = steps
        self.after: dict[str, str] = {step.event_type: step.after for step in steps}
        """The step each treatment step depends on, by event type."""
        self.schedule: tuple[VisitWindow, ...] = self[VISIT_SCHEDULE]
        self.schedule_by_code = {v.code: v for v in self.schedule}
        self.target_cells_per_kg: dict[str, float] = dict(self[ARM_TARGETS])
        self.decimals: int = self[FACT_DECIMALS]
        self.screening_window = dt.timedelta(days=self[SCREENING_WINDOW_DAYS])
        self._windows_closing: dict[dt.date, tuple[tuple[str, dt.date], ...]] = {}

    def __getitem__(self, parameter: Parameter) -> Any:
        """This version's value of a parameter, given by its declaration.

        Raises:
            KeyError: the version has no parameter of that name.
        """
        try:
            return self._values[parameter.name]
        except KeyError:
            raise KeyError(f"NCT06904729: the version has no parameter {parameter.name!r}") from None

    def rounded(self, value: float) -> float:
        """A derived value as the rules compare it (see ``FACT_DECIMALS``)."""
        return round(value, self.decimals)

    def windows_closing(self, infused_on: dt.date) -> tuple[tuple[str, dt.date], ...]:
        """Each visit's code and the last day of its window, for an infusion on ``infused_on``, in
        the order the windows close.

        Asked on every event of every infused participant: computed once per infusion date (and
        forgotten all at once past a few thousand dates, like the ``lru_cache`` it replaces).
        """
        closing = self._windows_closing.get(infused_on)
        if closing is None:
            if len(self._windows_closing) >= 4096:
                self._windows_closing.clear()
            closing = tuple(
                sorted(((v.code, v.closes_after(infused_on)) for v in self.schedule), key=lambda window: window[1])
            )
            self._windows_closing[infused_on] = closing
        return closing
