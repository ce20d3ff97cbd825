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


def retained(model: M) -> M:
    """``model``, and its payload and source, sharing the field-name set of their type.

    The model is not copied and nothing it serialises or compares changes. Call it on frozen
    models only (every contract model is): a shared set must never be changed in place. Models
    that set other fields than the first of their type keep their own set.
    """
    _share(model)
    for name in ("payload", "source"):
        nested = model.__dict__.get(name)
        if isinstance(nested, BaseModel):
            _share(nested)
    return model


def _share(model: BaseModel) -> None:
    names = model.__pydantic_fields_set__
    shared = _SHARED.setdefault(type(model), names)
    if shared is not names and shared == names:
        object.__setattr__(model, "__pydantic_fields_set__", shared)
