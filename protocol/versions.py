"""Protocol versions and amendments: which version of a study's protocol is in force for an event.

A study's history is its versions in order, each effective from a date (the first from the
beginning), optionally from another date at some sites (a site adopts an amendment when its
ethics committee approves it). An event is decided under the latest version effective at its
site on its date.

The date is the event's own local date (``occurred_at`` in the offset it was recorded with), not
its UTC date: an effective date is a calendar date at the site, and the protocol's own date
arithmetic (windows, ages, days after infusion) reads the same local dates. In UTC, an event at
07:00 on the effective date at a UTC+8 site would fall on the day before, under the old version.
The offset travels with the event, so the choice is as deterministic as UTC would be.

Pure: no I/O, no clock.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from protocol.model import Parameter, Protocol


class VersionError(ValueError):
    """A protocol history or an amendment that cannot be decided with."""


@dataclass(frozen=True)
class Version:
    """One version of a study's protocol and when it takes effect.

    Attributes:
        protocol: the version's rules and parameters.
        effective: the first local date it is in force (None: from the beginning of the study).
        at_sites: (site id, first local date) where a site adopted it on another date.
    """

    protocol: Protocol
    effective: dt.date | None = None
    at_sites: tuple[tuple[str, dt.date], ...] = ()

    @property
    def name(self) -> str:
        """The version's name, e.g. "1.0"."""
        return self.protocol.version

    def effective_at(self, site_id: str) -> dt.date | None:
        """The first local date the version is in force at a site (None: from the beginning)."""
        for site, date in self.at_sites:
            if site == site_id:
                return date
        return self.effective

    def in_force_on(self, date: dt.date, site_id: str) -> bool:
        """Whether the version has taken effect at the site by ``date``."""
        since = self.effective_at(site_id)
        return since is None or since <= date


class ProtocolHistory:
    """The versions of one study's protocol, in the order they were issued.

    Args:
        versions: the first is effective from the beginning; each later one from a date not
            earlier than the one before it, at every site.

    Raises:
        VersionError: see ``check_history``.
    """

    def __init__(self, versions: Iterable[Version]) -> None:
        self.versions: tuple[Version, ...] = tuple(versions)
        check_history(self.versions)
        self._by_name = {v.name: v.protocol for v in self.versions}

    @classmethod
    def of(cls, protocol: Protocol) -> ProtocolHistory:
        """A history of a single version, in force from the beginning."""
        return cls([Version(protocol)])

    @property
    def study_id(self) -> str:
        """The study all versions belong to."""
        return self.versions[0].protocol.study_id

    @property
    def current(self) -> Protocol:
        """The latest version."""
        return self.versions[-1].protocol

    def version(self, name: str) -> Protocol:
        """The version of this name.

        Raises:
            VersionError: the history has no such version.
        """
        try:
            return self._by_name[name]
        except KeyError:
            known = ", ".join(self._by_name)
            raise VersionError(f"{self.study_id} has no protocol version {name!r}; known: {known}") from None

    def in_force(self, occurred_at: dt.datetime, site_id: str) -> Protocol:
        """The version an event at ``occurred_at`` (its own local date) at ``site_id`` is decided under."""
        if len(self.versions) == 1:
            return self.versions[0].protocol  # in force from the beginning, everywhere
        date = occurred_at.date()
        for version in reversed(self.versions):
            if version.in_force_on(date, site_id):
                return version.protocol
        raise AssertionError("unreachable: check_history makes the first version effective from the beginning")

    def with_version(self, candidate: Version) -> ProtocolHistory:
        """This history with ``candidate`` issued last (replacing a version of the same name).

        For trying a candidate version (shadowing, audits) before it ships.

        Raises:
            VersionError: the candidate does not fit the history (see ``check_history``).
        """
        return ProtocolHistory([*(v for v in self.versions if v.name != candidate.name), candidate])

    def __repr__(self) -> str:
        return f"ProtocolHistory({self.study_id}: {', '.join(v.name for v in self.versions)})"


Judge = Protocol | ProtocolHistory
"""What events are decided under: one version (in force from the beginning) or a history."""


def history_of(judge: Judge) -> ProtocolHistory:
    """A history: ``judge`` itself, or the history of its one version."""
    return judge if isinstance(judge, ProtocolHistory) else ProtocolHistory.of(judge)


def version_in_force(judge: Judge, occurred_at: dt.datetime, site_id: str) -> Protocol:
    """The version an event is decided under (see ``ProtocolHistory.in_force``)."""
    return judge if isinstance(judge, Protocol) else judge.in_force(occurred_at, site_id)


def check_history(versions: tuple[Version, ...]) -> None:
    """Refuse a history some event could not be decided under, or decided ambiguously.

    Raises:
        VersionError: no versions; versions of different studies; a version name twice; a first
            version not effective from the beginning (at every site), or a later one that is;
            a version effective (at some site) before the version issued before it.
    """
    if not versions:
        raise VersionError("a protocol history has at least one version")
    study = versions[0].protocol.study_id
    if others := sorted({v.protocol.study_id for v in versions} - {study}):
        raise VersionError(f"a protocol history is of one study: {study}, not also {', '.join(others)}")
    names = [v.name for v in versions]
    if len(set(names)) != len(names):
        raise VersionError(f"{study}: a protocol version is named twice in {names}")
    first, later = versions[0], versions[1:]
    if first.effective is not None or first.at_sites:
        raise VersionError(f"{study} v{first.name}: the first version is in force from the beginning, at every site")
    sites = sorted({site for v in versions for site, _ in v.at_sites})
    for before, after in zip(versions, later, strict=False):
        for site in ("<default>", *sites):
            since, until = before.effective_at(site), after.effective_at(site)
            if until is None:
                raise VersionError(f"{study} v{after.name}: only the first version is in force from the beginning")
            if since is not None and until < since:
                raise VersionError(
                    f"{study} v{after.name}: effective at {site} on {until}, before v{before.name} ({since})"
                )


def amended(
    base: Protocol,
    version: str,
    effective: dt.date,
    changes: Mapping[str, Any],
    *,
    at_sites: Mapping[str, dt.date] | None = None,
) -> Version:
    """``base``, amended: these parameters changed, effective from a date.

    The amended version keeps ``base``'s rules and fact derivations; they read the changed values
    while it derives facts (see ``protocol.model.Parameter``). A value a rule's condition compares
    with is compiled into the condition when its section module is imported, so changing one
    needs a version written as modules, not an amendment of parameters: refused.

    Args:
        base: the version amended.
        version: the amended version's name.
        effective: its first local date in force.
        changes: new values by parameter name.
        at_sites: other first dates at some sites.

    Raises:
        VersionError: an unknown parameter, an unchanged name, or a value compiled into a condition.
    """
    check_amendable(base, changes)
    parameters = tuple(
        dataclasses.replace(p, value=changes[p.name]) if p.name in changes else p for p in base.parameters
    )
    protocol = dataclasses.replace(base, version=version, parameters=parameters, amends={**base.amends, **changes})
    return Version(protocol, effective, tuple(sorted((at_sites or {}).items())))


def check_amendable(base: Protocol, changes: Mapping[str, Any]) -> None:
    """Refuse a change ``amended`` cannot make take effect (see there).

    Raises:
        VersionError: an unknown parameter, a version unchanged, or a value compiled into the
            condition of a rule that names the parameter.
    """
    if base.amends:
        raise VersionError(f"{base.study_id} v{base.version}: amend the version written as modules, not an amendment")
    if not changes:
        raise VersionError(f"{base.study_id} v{base.version}: an amendment changes at least one parameter")
    for name, value in changes.items():
        try:
            old: Parameter = base.parameter(name)
        except KeyError:
            raise VersionError(f"{base.study_id} v{base.version} has no parameter {name!r}") from None
        old_values = old.value if isinstance(old.value, tuple) else (old.value,)
        for rule in base.rules:
            if name in rule.parameters and any(_compares_with(rule.when.define(), v) for v in old_values):
                raise VersionError(
                    f"{base.study_id} v{base.version}: {name} = {old.value!r} is compiled into the condition of "
                    f"{rule.rule_id}; a new value needs a version written as modules"
                )
        if type(value) is not type(old.value):
            raise VersionError(f"{name}: {value!r} is not a {type(old.value).__name__} like {old.value!r}")


def _compares_with(definition: Any, value: Any) -> bool:
    """Whether a durable_rules condition definition holds ``value`` as a constant anywhere."""
    needle = json.dumps(value)
    if isinstance(definition, dict):
        return any(_compares_with(v, value) for v in definition.values())
    if isinstance(definition, list):
        return any(_compares_with(v, value) for v in definition)
    return json.dumps(definition) == needle
