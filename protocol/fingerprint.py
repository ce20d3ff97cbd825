"""The ruleset fingerprint: which rules, exactly, decided a finding.

A SHA-256 over a protocol version's rule specs (with their durable_rules condition definitions),
parameters, schedule, steps, arms and the source text of the modules that derive its facts, so
that a change to the rules without a version bump shows in every finding it decides.

Deterministic across processes: canonical JSON (sorted keys, no whitespace) of plain values in
declared order; no set iteration, no ``id()``, no ``repr`` of objects, no ``hash()`` (so no
``PYTHONHASHSEED`` dependence).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib
import json
from pathlib import Path
from typing import Any

from protocol.model import Protocol, RuleSpec

GENERIC_MODULES = ("protocol.clinical", "protocol.engine", "protocol.model", "protocol.state")
"""The generic modules every protocol package's decisions depend on."""


class FingerprintError(ValueError):
    """A protocol holds a value the fingerprint cannot write canonically."""


_fingerprints: dict[int, tuple[Protocol, str]] = {}


def fingerprint(protocol: Protocol) -> str:
    """The ruleset fingerprint of a protocol version (SHA-256, hex), computed once per process.

    Raises:
        FingerprintError: a parameter value or condition constant that is not plain JSON.
    """
    cached = _fingerprints.get(id(protocol))
    if cached is not None and cached[0] is protocol:
        return cached[1]
    digest = hashlib.sha256(canonical(protocol).encode()).hexdigest()
    # Holding the protocol keeps its id from being reused by another object while cached.
    _fingerprints[id(protocol)] = (protocol, digest)
    return digest


def canonical(protocol: Protocol) -> str:
    """The canonical JSON the fingerprint hashes (for showing what it covers)."""
    document = {
        "study_id": protocol.study_id,
        "version": protocol.version,
        "arms": [
            [a.name, a.target_cells_per_kg] if a.target_total_cells is None else [a.name, None, a.target_total_cells]
            for a in protocol.arms
        ],
        "parameters": [[p.name, _plain(p.value), p.unit] for p in protocol.parameters],
        "schedule": [[w.code, w.day, w.window_days] for w in protocol.schedule],
        "steps": [[s.event_type, s.after] for s in protocol.steps],
        "fact_sources": [[s.name, None if s.on is None else sorted(s.on)] for s in protocol.fact_sources],
        "rules": [_rule(r) for r in protocol.rules],
        "sources": [[name, source_digest(name)] for name in source_modules(protocol)],
    }
    try:
        return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise FingerprintError(f"{protocol.study_id} v{protocol.version}: {e}") from None


def _rule(rule: RuleSpec) -> list[Any]:
    return [
        rule.rule_id,
        rule.kind.value,
        None if rule.category is None else rule.category.value,
        None if rule.severity is None else rule.severity.value,
        rule.reference,
        rule.term,
        rule.when.define(),
        list(rule.evidence),
        rule.once_per.value,
        rule.key,
        rule.for_each,
        rule.item_name,
        list(rule.parameters),
    ]


def _plain(value: Any) -> Any:
    """A parameter value as plain JSON: tuples as lists, a dataclass (a visit window) as the list
    of its field values in declared order; anything else as it is (json refuses what is not plain)."""
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return [_plain(getattr(value, f.name)) for f in dataclasses.fields(value)]
    return value


def source_modules(protocol: Protocol) -> list[str]:
    """The modules whose source is part of the fingerprint, sorted: every module of the packages
    that define the protocol's fact derivations, and the generic ones."""
    packages = sorted({s.declared.__module__.rpartition(".")[0] for s in protocol.fact_sources})
    names = set(GENERIC_MODULES)
    for package in packages:
        folder = Path(_file_of(package)).parent
        names |= {f"{package}.{path.stem}" if path.stem != "__init__" else package for path in folder.glob("*.py")}
    return sorted(names)


@functools.cache
def source_digest(module: str) -> str:
    """SHA-256 of a module's source file, read once per process.

    Reading a file is I/O, which protocol/ otherwise never does: this reads the code's own
    identity, not data, once, and the same installed code always gives the same digest.
    """
    return hashlib.sha256(Path(_file_of(module)).read_bytes()).hexdigest()


def _file_of(module: str) -> str:
    path = importlib.import_module(module).__file__
    if path is None:
        raise FingerprintError(f"{module} has no source file")
    return path
