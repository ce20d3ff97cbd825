"""Drug classes wide enough for the words of a protocol ("any colony-stimulating factor").

A concomitant medication names its class as the site writes it (``drug_class``) and, when the
site codes it, its WHO ATC code (``atc_code``). A class of the protocol's words is matched on
either: the ATC group, or the class names sites use for its members. Pure; no I/O.

Source: WHO Collaborating Centre for Drug Statistics Methodology, ATC/DDD Index: L03AA
"Colony stimulating factors" (filgrastim L03AA02, molgramostim L03AA03, sargramostim L03AA09,
lenograstim L03AA10, pegfilgrastim L03AA13, lipegfilgrastim L03AA14, ...).
"""

from __future__ import annotations

from typing import Final, Protocol

COLONY_STIMULATING_FACTOR_ATC: Final = "L03AA"
"""The ATC group of the colony-stimulating factors; a code at a deeper level starts with it."""

COLONY_STIMULATING_FACTOR_CLASSES: Final = frozenset(
    {"g-csf", "gm-csf", "m-csf", "csf", "peg-g-csf", "pegylated g-csf", "colony-stimulating factor"}
)
"""Class names (compared case-insensitively) that sites write for a colony-stimulating factor."""


class Medication(Protocol):
    """What a class is decided from: the class as written, and the ATC code when coded."""

    @property
    def drug_class(self) -> str: ...

    @property
    def atc_code(self) -> str | None: ...


def in_atc_group(atc_code: str | None, group: str) -> bool:
    """Whether an ATC code is in a group (the group itself or any code below it)."""
    return atc_code is not None and atc_code.startswith(group)


def is_colony_stimulating_factor(medication: Medication) -> bool:
    """Whether a medication is any colony-stimulating factor (G-CSF, GM-CSF, pegylated forms).

    Args:
        medication: a ``ConcomitantMedication`` payload (or anything with its two fields).

    Returns:
        True when its ATC code is in L03AA or its class is one of
        ``COLONY_STIMULATING_FACTOR_CLASSES``.
    """
    return (
        in_atc_group(medication.atc_code, COLONY_STIMULATING_FACTOR_ATC)
        or medication.drug_class.casefold() in COLONY_STIMULATING_FACTOR_CLASSES
    )
