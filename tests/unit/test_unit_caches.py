"""pint's caches behind ``contracts.units.same_unit`` stay bounded whatever units a source sends,
and the answers stay right once they have been set back (contracts/unit_caches.py)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from contracts import ContractError, parse_event
from contracts import units as units_module
from contracts.participant_events import ScreeningLabResulted
from contracts.unit_caches import BoundedCaches
from contracts.units import same_unit, to_canonical
from tests.builders import event_dict


def test_caches_past_their_bound_are_set_back_to_what_was_built_in_place() -> None:
    roots: dict[str, int] = {"meter": 1}
    factors: dict[tuple[str, str], float] = {}
    cache = SimpleNamespace(root_units=roots, conversion_factor=factors, name="not a dict")
    bounded = BoundedCaches(cache, kept=10)
    for n in range(10):
        roots[f"m{n}"] = n
    bounded.check()
    assert bounded.resets == 0
    assert bounded.added() == 10
    factors[("m", "cm")] = 100.0
    bounded.check()
    assert bounded.resets == 1
    assert cache.root_units is roots  # the same dict: pint may hold it under other names
    assert roots == {"meter": 1}
    assert factors == {}
    assert bounded.added() == 0


def test_a_bound_that_is_not_positive_is_refused() -> None:
    with pytest.raises(ValueError, match="must be positive"):
        BoundedCaches(SimpleNamespace(), kept=0)


def test_a_source_sending_ever_new_units_cannot_grow_the_unit_library_for_ever(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A lab system (or whoever holds its key) sends results in m1, m2, m3…: valid UCUM, each a
    # new unit for pint to work out, each refused as unknown for the analyte.
    assert same_unit("/nL", "10*9/L")  # the registry made
    kept = 200
    bounded = BoundedCaches(units_module._pint_caches().cache, kept=kept)
    monkeypatch.setattr(units_module, "_pint_caches", lambda: bounded)
    most = 0
    for n in range(1, 1_201):
        event = event_dict("ScreeningLabResulted")
        event["payload"] = {"loinc": "751-8", "value": 1.0, "unit": f"m{n}"}
        with pytest.raises(ContractError, match="unit"):
            parse_event(json.dumps(event))
        most = max(most, bounded.added())
    assert most <= kept + 50, f"{most} entries added, bound {kept} (one unit adds a few)"
    assert bounded.resets >= 2, "the attack did not reach the bound: the test proves nothing"
    # Once set back, what is the same unit and what is not is answered as before.
    same_unit.cache_clear()
    units_module._ucum.cache_clear()
    assert to_canonical("751-8", 1.8, "/nL") == to_canonical("751-8", 1.8, "10*9/L")
    assert same_unit("mg/dl", "mg/dL")
    assert not same_unit("10*6/uL", "10*9/L")
    event = event_dict("ScreeningLabResulted")
    event["payload"] = {"loinc": "6690-2", "value": 5400, "unit": "{cells}/uL"}
    assert isinstance(parse_event(json.dumps(event)), ScreeningLabResulted)
