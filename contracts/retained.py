"""Events kept for long (in a participant's state) at a fraction of their memory.

A validated pydantic model carries, besides its fields, the set of the field names that were
set: about 700 bytes for an event and 200 for each nested model, more than the fields
themselves. Models of one type parsed from complete messages have the same set, so a model kept
for long can share one set (pydantic copies it before changing it: ``model_copy``).
"""

from __future__ import annotations

from typing import TypeVar

from pydantic import BaseModel

M = TypeVar("M", bound=BaseModel)

_SHARED: dict[type[BaseModel], set[str]] = {}
"""The field-name set models of each type share: the first one kept."""

_OTHER_SETS: dict[frozenset[str], set[str]] = {}
"""Field-name sets that differ from their type's first (optional fields left out)."""


def retained(model: M) -> M:
    """``model``, and its payload and source, sharing the field-name set of their type; its
    source replaced by an equal one kept before.

    The model is not copied and nothing it serialises or compares changes. Call it on frozen
    models only (every contract model is): a shared set must never be changed in place.
    """
    _share(model)
    payload = model.__dict__.get("payload")
    if isinstance(payload, BaseModel):
        _share(payload)
    source = model.__dict__.get("source")
    if isinstance(source, BaseModel):
        # One system and actor write many events: equal sources (frozen, so hashable) are one.
        if len(_SOURCES) >= SOURCES_KEPT:
            _SOURCES.clear()
        # Keyed by its field values, not the model: hashing and comparing a tuple stays in C,
        # where a model's ``__hash__`` and ``__eq__`` are Python (and asked for every kept event).
        shared = _SOURCES.setdefault((type(source), *source.__dict__.values()), source)
        if shared is not source:
            object.__setattr__(model, "source", shared)
        else:
            _share(source)
    return model


SOURCES_KEPT = 10_000
"""Distinct sources remembered at most (they are forgotten all at once beyond)."""

_SOURCES: dict[tuple[object, ...], BaseModel] = {}
"""Distinct event sources seen, each kept once (a few per system and actor)."""


def _share(model: BaseModel) -> None:
    names = model.__pydantic_fields_set__
    shared = _SHARED.setdefault(type(model), names)
    if shared is not names and shared != names:  # optional fields absent: a set of its own kind
        shared = _OTHER_SETS.setdefault(frozenset(names), names)
    if shared is not names:
        object.__setattr__(model, "__pydantic_fields_set__", shared)
