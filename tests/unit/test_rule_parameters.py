"""Each rule names the protocol parameters its decision depends on (``RuleSpec.parameters``)."""

from __future__ import annotations

import pytest
from durable.lang import m

from contracts import Category, Severity
from protocol.model import Parameter, Protocol, deviation
from protocol.nct06904729 import PROTOCOL

RULE_IDS = {
    *(f"ELIG-IN{n:02d}" for n in (1, 2, 3, 4, 5, 6, 8, 9, 10, 11)),
    *(f"ELIG-EX{n:02d}" for n in range(1, 11)),
    "ELIG-MISSING",
    "CONSENT-01",
    "CONSENT-02",
    "SEQ-01",
    "SEQ-02",
    "SEQ-03",
    "SEQ-04",
    "DOSE-01",
    "VISIT-01",
    "VISIT-02",
    "SAFETY-CRS3",
    "SAFETY-ICANS3",
    "SAFETY-SAE",
    "RELAPSE",
}
"""The v1.0 catalogue (README, "Status")."""

EXPECTED = [
    ("ELIG-MISSING", ("screening_window_days", "equivocal_is_positive")),
    ("ELIG-IN01", ("age_min", "age_max", "age_of_consent")),
    ("ELIG-IN03", ("biopsy_max_days_before_consent", "age_of_consent")),
    ("ELIG-IN04", ("sledai_min", "screening_window_days")),
    ("ELIG-IN05", ("immunosuppressants_min", "refractory_min_days")),
    ("ELIG-IN06", ("screening_window_days", "equivocal_is_positive")),
    (
        "ELIG-IN09",
        (
            "lymphocytes_min",
            "wbc_min",
            "neutrophils_min",
            "hemoglobin_min",
            "transaminase_max_uln",
            "bilirubin_max_uln",
            "bilirubin_max_uln_gilbert",
            "egfr_min",
            "coagulation_max_uln",
            "gcsf_free_days",
            "inr_default_uln",
            "screening_window_days",
            "fact_decimals",
        ),
    ),
    ("ELIG-EX01", ()),
    ("ELIG-EX06", ("screening_window_days", "equivocal_is_positive")),
    ("CONSENT-01", ("age_of_consent",)),
    ("CONSENT-02", ()),
    ("SEQ-02", ()),
    ("SEQ-04", ("infusion_days_after_lymphodepletion",)),
    ("DOSE-01", ("dose_tolerance", "arm_target_cells_per_kg", "fact_decimals")),
    ("VISIT-01", ("visit_schedule",)),
    ("VISIT-02", ("visit_schedule",)),
    ("SAFETY-CRS3", ()),
    ("RELAPSE", ()),
]


def test_the_ruleset_has_every_rule_id() -> None:
    assert {r.rule_id for r in PROTOCOL.rules} == RULE_IDS


def test_every_named_parameter_exists() -> None:
    names = {p.name for p in PROTOCOL.parameters}
    unknown = {(r.rule_id, n) for r in PROTOCOL.rules for n in r.parameters if n not in names}
    assert unknown == set()


def test_every_parameter_is_used_by_some_rule() -> None:
    used = {n for r in PROTOCOL.rules for n in r.parameters}
    assert {p.name for p in PROTOCOL.parameters} - used == set()


@pytest.mark.parametrize(("rule_id", "names"), EXPECTED, ids=[rule_id for rule_id, _ in EXPECTED])
def test_a_rule_names_exactly_what_it_uses(rule_id: str, names: tuple[str, ...]) -> None:
    assert PROTOCOL.rule(rule_id).parameters == names
    assert tuple(p.name for p in PROTOCOL.parameters_of(rule_id)) == names


def test_parameters_of_gives_the_parameter_objects() -> None:
    (window, equivocal) = PROTOCOL.parameters_of("ELIG-MISSING")
    assert (window.value, window.unit) == (28, "days")
    assert window.assumption is not None
    assert "28 days" in window.assumption
    assert equivocal.value is True
    assert PROTOCOL.parameters_of("SAFETY-SAE") == ()
    assert all(isinstance(p, Parameter) for r in PROTOCOL.rules for p in PROTOCOL.parameters_of(r.rule_id))


def test_parameters_of_an_unknown_rule_is_a_key_error() -> None:
    with pytest.raises(KeyError):
        PROTOCOL.parameters_of("NO-SUCH-RULE")


def _one_rule_protocol(*named: str) -> Protocol:
    rule = deviation(
        "R-01",
        category=Category.ELIGIBILITY,
        severity=Severity.MINOR,
        reference="test",
        term="test",
        when=m.x == 1,
        evidence=("x",),
        parameters=named,
    )
    return Protocol("S", "1", "t", (), (Parameter("known", 1, "", "test"),), (), (), (), (rule,))


def test_a_protocol_refuses_a_rule_naming_an_unknown_parameter() -> None:
    assert _one_rule_protocol("known").parameters_of("R-01")[0].name == "known"
    with pytest.raises(ValueError, match="R-01 names unknown parameters"):
        _one_rule_protocol("knwon")
