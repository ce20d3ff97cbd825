"""The protocols TrialGuard knows, by study id, found through Python entry points.

A protocol is a package. It registers each study it defines as an entry point of the group
``trialguard.protocols``, named by the study id, whose object is the study's
:class:`~protocol.versions.ProtocolHistory` (its versions in order, with their effective dates),
e.g. in the package's ``pyproject.toml``::

    [project.entry-points."trialguard.protocols"]
    NCT06904729 = "protocol.nct06904729:HISTORY"

The engine never imports a trial's module by name: it asks this registry for a study id. Entry
points are read once per process (the installed packages' metadata) and each study's package is
imported only when that study is first asked for, so a package that fails to load fails alone:
asking for it raises :class:`ProtocolLoadError` naming the entry point, its module and the
reason, and every other study keeps working.

Reading the installed packages' metadata is the one I/O here: it reads which code is installed,
not data, and the same installation always gives the same answer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib import metadata

from protocol.model import Protocol
from protocol.versions import ProtocolHistory

ENTRY_POINT_GROUP = "trialguard.protocols"
"""The entry point group protocol packages register their studies under."""


class ProtocolLookupError(LookupError):
    """A study's protocol cannot be had: unknown, or its package failed to load."""


class UnknownStudyError(ProtocolLookupError, KeyError):
    """No installed protocol package registers this study id."""

    def __str__(self) -> str:
        return str(self.args[0])  # KeyError would quote the message


class ProtocolLoadError(ProtocolLookupError):
    """A protocol package registers the study but does not load: an import error, a wrong object,
    a history of another study, or the study registered twice.

    Attributes:
        study_id: the entry point's name.
        target: the entry point's object reference (``module:attribute``).
        reason: what went wrong, for an operator.
    """

    def __init__(self, study_id: str, target: str, reason: str) -> None:
        entry = f"{ENTRY_POINT_GROUP} entry {target}"
        super().__init__(f"protocol package for {study_id} ({entry}) failed to load: {reason}")
        self.study_id, self.target, self.reason = study_id, target, reason


@dataclass(frozen=True)
class Installed:
    """One study as installed: its history, or why it could not be loaded.

    Attributes:
        study_id: the entry point's name.
        target: where the entry point points (``module:attribute``).
        distribution: the installed distribution that registers it (None when unknown).
        history: the study's versions (None when it failed to load).
        error: why it failed to load (None when it loaded).
    """

    study_id: str
    target: str
    distribution: str | None
    history: ProtocolHistory | None = None
    error: ProtocolLoadError | None = None


def installed_entry_points() -> tuple[metadata.EntryPoint, ...]:
    """The ``trialguard.protocols`` entry points of the installed distributions."""
    return tuple(metadata.entry_points(group=ENTRY_POINT_GROUP))


class Registry:
    """The studies of a set of entry points, each loaded on first use and kept.

    Args:
        discover: gives the entry points (read once, on first use); the installed ones by default.
    """

    def __init__(self, discover: Callable[[], Iterable[metadata.EntryPoint]] = installed_entry_points) -> None:
        self._discover = discover
        self._entries: dict[str, list[metadata.EntryPoint]] | None = None
        self._loaded: dict[str, Installed] = {}

    def studies(self) -> list[str]:
        """The registered study ids, sorted (their packages are not imported)."""
        return sorted(self._by_study())

    def installed(self, study_id: str) -> Installed:
        """One study, loaded (or its load error), once per registry.

        Raises:
            UnknownStudyError: no entry point registers it.
        """
        if study_id not in self._loaded:
            entries = self._by_study().get(study_id)
            if not entries:
                known = ", ".join(self.studies()) or "none installed"
                raise UnknownStudyError(f"no protocol for study {study_id!r}; known: {known}")
            self._loaded[study_id] = _load(study_id, entries)
        return self._loaded[study_id]

    def all(self) -> list[Installed]:
        """Every registered study, loaded or with its load error, by study id."""
        return [self.installed(study) for study in self.studies()]

    def versions_for(self, study_id: str) -> ProtocolHistory:
        """See the module-level ``versions_for``."""
        found = self.installed(study_id)
        if found.error is not None:
            raise found.error
        assert found.history is not None
        return found.history

    def _by_study(self) -> dict[str, list[metadata.EntryPoint]]:
        if self._entries is None:
            entries: dict[str, list[metadata.EntryPoint]] = {}
            for entry in self._discover():
                entries.setdefault(entry.name, []).append(entry)
            self._entries = entries
        return self._entries


def _distribution(entry: metadata.EntryPoint) -> str | None:
    dist = getattr(entry, "dist", None)
    return None if dist is None else str(dist.name)


def _load(study_id: str, entries: list[metadata.EntryPoint]) -> Installed:
    entry = entries[0]
    where = Installed(study_id, entry.value, _distribution(entry))
    if len({e.value for e in entries}) > 1:
        targets = " and ".join(f"{e.value} ({_distribution(e) or 'unknown distribution'})" for e in entries)
        return _failed(where, f"registered twice, by {targets}")
    try:
        history = entry.load()
    except Exception as e:  # any error of a package's import is that package's failure, not ours
        return _failed(where, f"{type(e).__name__}: {e}")
    if not isinstance(history, ProtocolHistory):
        return _failed(where, f"it is a {type(history).__name__}, not a ProtocolHistory")
    if history.study_id != study_id:
        return _failed(where, f"its history is of study {history.study_id!r}, not {study_id!r}")
    return Installed(study_id, entry.value, where.distribution, history=history)


def _failed(where: Installed, reason: str) -> Installed:
    error = ProtocolLoadError(where.study_id, where.target, reason)
    return Installed(where.study_id, where.target, where.distribution, error=error)


REGISTRY = Registry()
"""The installed protocol packages (replaced by tests that install fake ones)."""


def versions_for(study_id: str) -> ProtocolHistory:
    """The versions of a study's protocol, with the dates they take effect.

    Raises:
        UnknownStudyError: no installed package registers the study.
        ProtocolLoadError: the package that registers it failed to load.
    """
    return REGISTRY.versions_for(study_id)


def protocol_for(study_id: str) -> Protocol:
    """The current (latest) version of a study's protocol.

    Raises:
        UnknownStudyError: no installed package registers the study.
        ProtocolLoadError: the package that registers it failed to load.
    """
    return versions_for(study_id).current


def installed() -> list[Installed]:
    """Every installed study, loaded or with its load error, by study id (``trialguard protocol list``)."""
    return REGISTRY.all()


def studies() -> list[str]:
    """The installed study ids, sorted (their packages are not imported)."""
    return REGISTRY.studies()
