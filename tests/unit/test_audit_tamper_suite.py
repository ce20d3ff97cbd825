"""Every tamper case against both verifiers: ``trialguard audit verify``'s checks and the independent
verifier written from docs/audit-format.md. Each case is an attack (or a careless edit) on an
export and its live checkpoints; both verifiers must give the expected answer, so they agree.
The table of answers: ``.venv/bin/python -m tests.tamper_cases``."""

from __future__ import annotations

import pytest

from tests.tamper_cases import CASES, Case, independent, project


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_both_verifiers_give_the_expected_answer(case: Case) -> None:
    ours, theirs = project(case), independent(case)
    expected = "accepted" if case.accept else "refused"
    assert ours.accepted is case.accept, f"trialguard audit verify: not {expected}: {ours.said}"
    assert theirs.accepted is case.accept, f"independent verifier: not {expected}: {theirs.said}"


def test_the_suite_holds_the_attacks_the_issue_names() -> None:
    names = " / ".join(c.name for c in CASES)
    for attack in (
        "changed byte",
        "removed record line",
        "swapped",
        "inserted",
        "forged live checkpoint head",
        "forged manifest count",
        "dropped partition",
        "rollback",
        "another key under the original key id",
        "record edited, chain recomputed",
        "truncated",
        "extra field",
        "empty file",
        "missing manifest",
    ):
        assert attack in names, attack
