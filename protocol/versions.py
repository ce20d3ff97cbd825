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

from protocol.model import Parameter, Protocol, RuleSpec


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
    changes: Mapping[str, Any] | None = None,
    *,
    at_sites: Mapping[str, dt.date] | None = None,
    remove_rules: Iterable[str] = (),
    add_rules: Iterable[RuleSpec] = (),
    rule_changes: Mapping[str, Mapping[str, Any]] | None = None,
) -> Version:
    """``base``, amended: a new version, compiled as a rule set of its own, effective from a date.

    Anything may change: any parameter (a limit compiled into a rule's condition, the visit
    schedule, a window the facts are derived with), the rules (removed, added) and any field of a
    rule's declaration but its id (severity, category, term, ...). The new version is built by
    ``base``'s builder (``Protocol.rebuild``) from the changed parameters, so every condition and
    fact derivation reads the new values; what ``base`` itself changed from what its builder makes
    (rules it removed, added or edited) carries over; then this amendment's rule changes apply.
    ``base`` is left as it was: both versions decide side by side.

    Args:
        base: the version amended (the one in force before, usually).
        version: the amended version's name.
        effective: its first local date in force.
        changes: new values by parameter name (a visit schedule is the value of its parameter).
        at_sites: other first dates at some sites.
        remove_rules: ids of rules the amendment removes.
        add_rules: rules it adds, after the others.
        rule_changes: by rule id, new values of its declaration's fields (``{"severity": ...}``).

    Raises:
        VersionError: nothing changed; an unknown parameter or a value of another type; parameter
            changes to a protocol without a builder; a rule removed or changed that ``base`` does
            not have, or added that it has; a field that is not a rule's, or its id; a result
            the protocol refuses (an added rule naming an unknown parameter, ...).
    """
    changes, rule_changes = dict(changes or {}), {k: dict(v) for k, v in (rule_changes or {}).items()}
    removed, added = tuple(remove_rules), tuple(add_rules)
    check_amendable(base, changes, removed, added, rule_changes)
    name = f"{base.study_id} v{version}"
    try:
        protocol = _rebuilt(base, version, changes) if changes else dataclasses.replace(base, version=version)
        rules = [r for r in protocol.rules if r.rule_id not in removed]
        rules = [dataclasses.replace(r, **rule_changes[r.rule_id]) if r.rule_id in rule_changes else r for r in rules]
        protocol = dataclasses.replace(protocol, rules=(*rules, *added))
    except ValueError as e:
        raise VersionError(f"{name}: {e}") from None
    return Version(protocol, effective, tuple(sorted((at_sites or {}).items())))


def _rebuilt(base: Protocol, version: str, changes: Mapping[str, Any]) -> Protocol:
    """``base`` built again with changed parameters: each of its rules as the builder now makes
    it, with what ``base`` changed in it from what the builder made (a severity, ...) kept; its
    rules the builder does not make (added by an amendment) kept as they are; in ``base``'s order."""
    assert base.rebuild is not None  # check_amendable
    parameters = tuple(
        dataclasses.replace(p, value=changes[p.name]) if p.name in changes else p for p in base.parameters
    )
    made_before = {r.rule_id: r for r in base.rebuild(base.version, base.parameters).rules}
    built = base.rebuild(version, parameters)
    made_now = {r.rule_id: r for r in built.rules}
    rules = []
    for rule in base.rules:
        before, now = made_before.get(rule.rule_id), made_now.get(rule.rule_id)
        if before is not None and now is not None:
            edited = {k: v for k, v in _declared(rule).items() if v != _declared(before)[k]}
            rule = dataclasses.replace(now, **{k: getattr(rule, k) for k in edited})
        rules.append(rule)
    return dataclasses.replace(built, rules=tuple(rules))


def _declared(rule: RuleSpec) -> dict[str, Any]:
    """A rule's declaration as comparable values (its condition as durable_rules defines it)."""
    fields = {f.name: getattr(rule, f.name) for f in dataclasses.fields(rule)}
    fields["when"] = json.dumps(rule.when.define(), sort_keys=True)
    return fields


_RULE_FIELDS = frozenset(f.name for f in dataclasses.fields(RuleSpec)) - {"rule_id"}


def check_amendable(
    base: Protocol,
    changes: Mapping[str, Any],
    remove_rules: tuple[str, ...] = (),
    add_rules: tuple[RuleSpec, ...] = (),
    rule_changes: Mapping[str, Mapping[str, Any]] | None = None,
) -> None:
    """Refuse an amendment ``amended`` cannot make (see there).

    Raises:
        VersionError: what ``amended`` raises, but for what only building the version shows.
    """
    name = f"{base.study_id} v{base.version}"
    rule_changes = rule_changes or {}
    if not (changes or remove_rules or add_rules or rule_changes):
        raise VersionError(f"{name}: an amendment changes at least one parameter or rule")
    if changes and base.rebuild is None:
        raise VersionError(f"{name} has no builder (Protocol.rebuild): its parameters cannot be recompiled")
    for parameter, value in changes.items():
        try:
            old: Parameter = base.parameter(parameter)
        except KeyError:
            raise VersionError(f"{name} has no parameter {parameter!r}") from None
        if type(value) is not type(old.value):
            raise VersionError(f"{parameter}: {value!r} is not a {type(old.value).__name__} like {old.value!r}")
    ids = {r.rule_id for r in base.rules}
    for rule_id in (*remove_rules, *rule_changes):
        if rule_id not in ids:
            raise VersionError(f"{name} has no rule {rule_id!r} to remove or change")
    if both := sorted(set(remove_rules) & set(rule_changes)):
        raise VersionError(f"{name}: {', '.join(both)} both removed and changed")
    for rule in add_rules:
        if rule.rule_id in ids and rule.rule_id not in remove_rules:
            raise VersionError(f"{name} already has a rule {rule.rule_id}: change it, or remove it and add the new one")
    for rule_id, fields in rule_changes.items():
        if unknown := sorted(set(fields) - _RULE_FIELDS):
            raise VersionError(f"{rule_id}: {', '.join(unknown)} cannot be changed (a rule's fields: "
                               f"{', '.join(sorted(_RULE_FIELDS))})")  # fmt: skip
