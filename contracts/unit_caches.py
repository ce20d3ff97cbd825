"""pint's registry caches, kept within a bound.

pint (under ucumvert, ``contracts.units.same_unit``) caches what it works out about units in
plain dicts that only grow: each distinct unit it is asked about adds entries (its root units,
its dimensionality, conversion factors). Units come from the wire, and every process that parses
events (the lab gateway, the rules service, replay) asks about a unit not listed for its analyte.
A source sending ``m1``, ``m2``, ``m3``… — each a valid UCUM unit, each refused as unknown for the
analyte — would grow them for as long as the process runs; ``same_unit``'s own ``lru_cache``
bounds only its answers, not pint's work behind them.

:class:`BoundedCaches` lets those dicts hold at most ``kept`` entries beyond the ones pint built
with the registry, and then sets them back to those. A cache only saves work: every answer stays
the same, the next units are worked out again.

Pure: no I/O, imports nothing of ours.
"""

from __future__ import annotations

from typing import Any

PINT_CACHE_KEPT = 10_000
"""Entries pint's caches may gain beyond those built with the registry: about 4 MiB. Measured: a
unit never seen adds about 8 entries, 3.2 KiB in all (3,000 units ``m2``…``m3001`` compared with
``mg/dL``: 9.5 MiB kept by pint before this bound). Listed units (the soak's, the examples') add none."""


class BoundedCaches:
    """The dict-valued attributes of a pint cache object, held within ``kept`` added entries.

    Args:
        cache: the registry's cache (``registry._cache``, a ``RegistryCache``), as built.
        kept: how many entries may be added to its dicts, all together, before they are set
            back to what they held here.
    """

    def __init__(self, cache: Any, kept: int = PINT_CACHE_KEPT) -> None:
        if kept < 1:
            raise ValueError(f"kept ({kept}) must be positive")
        self.kept = kept
        self.cache = cache
        self._dicts: dict[str, dict[Any, Any]] = {
            name: value for name, value in vars(cache).items() if isinstance(value, dict)
        }
        self._built = {name: dict(value) for name, value in self._dicts.items()}
        self._built_size = sum(map(len, self._built.values()))
        self.resets = 0
        """How many times the caches were set back."""

    def added(self) -> int:
        """Entries added since the registry was built (or last set back)."""
        return sum(map(len, self._dicts.values())) - self._built_size

    def check(self) -> None:
        """Set the caches back to what was built when more than ``kept`` entries were added.

        The dicts are changed in place: pint may hold them under other names too.
        """
        if self.added() <= self.kept:
            return
        for name, built in self._built.items():
            current = self._dicts[name]
            current.clear()
            current.update(built)
        self.resets += 1
