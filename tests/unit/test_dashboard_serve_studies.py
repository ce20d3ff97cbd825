"""Which studies ``dashboard serve`` serves, and roles per study through ``trialguard users``."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from contracts import AccessChanged
from services.access_log import AccessRecorder
from services.cli import build_parser
from services.dashboard.serve import chosen_studies
from services.dashboard.users import UserStore
from services.dashboard.users_cli import users_list, users_revoke_role, users_role
from services.errors import ConfigurationError

A, B = "NCT06904729", "NCT06946485"


def _serve(*argv: str) -> tuple[str, ...]:
    return chosen_studies(build_parser().parse_args(["dashboard", "serve", *argv]))


def test_every_installed_study_by_default_or_those_named_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRIALGUARD_STUDY_ID", raising=False)
    assert _serve() == (A, B)
    assert _serve("--study", B) == (B,)
    assert _serve("--study", B, "--study", A, "--study", B) == (B, A)
    monkeypatch.setenv("TRIALGUARD_STUDY_ID", f"{B},{A}")
    assert _serve() == (B, A)


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--study", "NCT00000000"], "no protocol package is installed for it"),
        (["--study", "a b"], "topic name part"),
    ],
)
def test_a_study_that_cannot_be_served_is_refused_by_name(argv: list[str], says: str) -> None:
    with pytest.raises(ConfigurationError, match=says):
        _serve(*argv)


def _recorder(study: str, events: list[AccessChanged]) -> AccessRecorder:
    return AccessRecorder(study, "ops", "cli", events.append)


def test_the_cli_gives_and_takes_a_role_in_the_study_of_its_access_log(tmp_path: Path) -> None:
    users = UserStore(tmp_path / "users.sqlite3", hasher=PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
    users.add("mona", "monitor", study=A)
    args = build_parser().parse_args(
        ["users", "role", "mona", "--role", "site", "--site", "GZ-02", "--study", B, "--data-dir", str(tmp_path)]
    )
    events: list[AccessChanged] = []
    out = io.StringIO()
    assert users_role(args, stdout=out, recorder=_recorder(B, events)) == 0
    assert out.getvalue().strip() == f"mona is now site of site GZ-02 in study {B}"
    (given,) = events
    assert (given.study_id, given.role, given.site, given.enabled) == (B, "site", "GZ-02", True)
    listed = io.StringIO()
    users_list(build_parser().parse_args(["users", "list", "--data-dir", str(tmp_path)]), stdout=listed)
    assert listed.getvalue().split()[-1] == f"{A}=monitor,{B}=site@GZ-02"
    revoke = build_parser().parse_args(["users", "revoke-role", "mona", "--study", B, "--data-dir", str(tmp_path)])
    assert users_revoke_role(revoke, stdout=io.StringIO(), recorder=_recorder(B, events)) == 0
    assert (events[-1].study_id, events[-1].enabled) == (B, False)
    stored = users.get("mona")
    assert stored is not None
    assert stored.in_study(B) is None
    assert stored.in_study(A) is not None
    err = io.StringIO()
    assert users_revoke_role(revoke, stdout=io.StringIO(), stderr=err, recorder=_recorder(B, events)) == 2
    assert f"'mona' has no role in study {B!r}" in err.getvalue()


def test_the_notifier_of_a_study_knows_only_that_studys_users_as_owners(tmp_path: Path) -> None:
    from services.cli import _owners_from_users_file

    users = UserStore(tmp_path / "users.sqlite3", hasher=PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
    users.add("mona", "monitor", study=A)
    users.add("bea", "data-manager", study=B)
    users.set_role("mona", "site", "GZ-02", AccessRecorder(B, "ops", "cli", lambda _: None))
    of_a = _owners_from_users_file(users.path, A)()
    of_b = _owners_from_users_file(users.path, B)()
    assert {name: owner.site for name, owner in of_a.items()} == {"mona": None}  # bea is told nothing of A
    assert {name: owner.site for name, owner in of_b.items()} == {"bea": None, "mona": "GZ-02"}


def test_the_legacy_study_is_the_first_of_the_variable_else_the_first_trial(monkeypatch: pytest.MonkeyPatch) -> None:
    from services.dashboard.study_roles import legacy_study

    monkeypatch.setenv("TRIALGUARD_STUDY_ID", f"{B}, {A}")
    assert legacy_study() == B
    monkeypatch.delenv("TRIALGUARD_STUDY_ID")
    assert legacy_study() == A
