"""Dashboard users: the permission table and the user store (`trialguard users`: test_users_cli.py;
the login throttle: test_login_throttle.py)."""

from __future__ import annotations

import sqlite3
import stat
import threading
import typing
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from services.dashboard.roles import (
    Action,
    PermissionDeniedError,
    Role,
    User,
    check_may_review,
    may_manage_users,
    may_read_review_history,
    may_read_site,
    may_review,
)
from services.dashboard.users import UserError, UserStore

# logged: the autouse fixture; parse: test_credentials.py imports it from here.
from tests.unit.users_support import CHEAP, PASSWORD, RecordingLog, logged  # noqa: F401
from tests.unit.users_support import parse as parse

USERS = {
    Role.MONITOR: User("mona", Role.MONITOR, None),
    Role.DATA_MANAGER: User("dana", Role.DATA_MANAGER, None),
    Role.SITE: User("sid", Role.SITE, "SITE-01"),
    Role.AUDITOR: User("audrey", Role.AUDITOR, None),
    Role.ADMIN: User("ada", Role.ADMIN, None),
}

# The expected table, written out on its own (not read from GRANTS): role → allowed review actions.
EXPECTED_REVIEW = {
    Role.MONITOR: {Action.ACKNOWLEDGE, Action.COMMENT},
    Role.DATA_MANAGER: set(Action),
    Role.SITE: {Action.COMMENT},
    Role.AUDITOR: set(),
    Role.ADMIN: set(),
}


# --- the permission table -------------------------------------------------------------------


@pytest.mark.parametrize("action", list(Action), ids=str)
@pytest.mark.parametrize("role", list(Role), ids=str)
def test_every_role_and_action_on_the_users_own_site(role: Role, action: Action) -> None:
    user = USERS[role]
    allowed = action in EXPECTED_REVIEW[role]
    assert may_review(user, action, "SITE-01") is allowed
    if allowed:
        check_may_review(user, action, "SITE-01")
    else:
        with pytest.raises(PermissionDeniedError, match=rf"role '{role.value}' may not {action.value}"):
            check_may_review(user, action, "SITE-01")


@pytest.mark.parametrize("action", list(Action), ids=str)
@pytest.mark.parametrize("role", list(Role), ids=str)
def test_only_site_users_are_bound_to_their_site(role: Role, action: Action) -> None:
    user = USERS[role]
    allowed = action in EXPECTED_REVIEW[role] and role is not Role.SITE
    assert may_review(user, action, "SITE-02") is allowed
    assert may_read_site(user, "SITE-02") is (role is not Role.SITE)
    assert may_read_site(user, "SITE-01") is True


def test_a_site_user_commenting_on_another_site_is_told_which_sites() -> None:
    with pytest.raises(PermissionDeniedError, match=r"role 'site' of site 'SITE-01' may not comment .* 'SITE-02'"):
        check_may_review(USERS[Role.SITE], Action.COMMENT, "SITE-02")


def test_a_site_user_without_a_site_sees_nothing() -> None:
    orphan = User("orphan", Role.SITE, None)
    assert not may_read_site(orphan, "SITE-01")
    assert not may_review(orphan, Action.COMMENT, "SITE-01")


@pytest.mark.parametrize(
    ("role", "manage", "history"),
    [
        (Role.MONITOR, False, True),
        (Role.DATA_MANAGER, False, True),
        (Role.SITE, False, True),
        (Role.AUDITOR, False, True),
        (Role.ADMIN, True, True),
    ],
    ids=str,
)
def test_user_management_and_review_history(role: Role, manage: bool, history: bool) -> None:
    assert may_manage_users(USERS[role]) is manage
    assert may_read_review_history(USERS[role]) is history


def test_actions_match_the_review_contract() -> None:
    from contracts import reviews

    assert [a.value for a in Action] == [a.value for a in reviews.ReviewAction]


# --- the user store -------------------------------------------------------------------------


@pytest.fixture
def store(tmp_path: Path) -> UserStore:
    return UserStore(tmp_path / "data" / "users.sqlite3", hasher=CHEAP)


def test_add_then_authenticate(store: UserStore) -> None:
    added = store.add("sid", "site", PASSWORD, site="SITE-01")
    assert added == User("sid", Role.SITE, "SITE-01")
    assert store.authenticate("sid", PASSWORD) == added
    assert store.get("sid") == added
    assert store.get("nobody") is None


@pytest.mark.parametrize(
    ("name", "password"),
    [("mona", "correct horse batterY"), ("mona", ""), ("Mona", PASSWORD), ("nobody", PASSWORD), ("mona", "x" * 5000)],
    ids=["wrong-password", "empty-password", "name-case-differs", "unknown-user", "huge-password"],
)
def test_authentication_fails(store: UserStore, name: str, password: str) -> None:
    store.add("mona", Role.MONITOR, PASSWORD)
    assert store.authenticate(name, password) is None


class CountingHasher(PasswordHasher):
    """A cheap hasher that counts its verifications."""

    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=8, parallelism=1)
        self.verified = 0

    def verify(self, hash: str | bytes, password: str | bytes) -> typing.Literal[True]:
        self.verified += 1
        return super().verify(hash, password)


def test_an_unknown_user_still_costs_a_hash_verification(tmp_path: Path) -> None:
    hasher = CountingHasher()
    store = UserStore(tmp_path / "users.sqlite3", hasher=hasher)
    assert store.authenticate("nobody", PASSWORD) is None
    assert hasher.verified == 1


def test_an_outdated_hash_is_upgraded_on_login(tmp_path: Path) -> None:
    path = tmp_path / "users.sqlite3"
    UserStore(path, hasher=CHEAP).add("mona", Role.MONITOR, PASSWORD)
    stronger = PasswordHasher(time_cost=2, memory_cost=16, parallelism=1)
    upgraded = UserStore(path, hasher=stronger)
    assert upgraded.authenticate("mona", PASSWORD) is not None
    stored = _hash_of(path, "mona")
    assert not stronger.check_needs_rehash(stored)
    assert upgraded.authenticate("mona", PASSWORD) is not None


def _hash_of(path: Path, name: str) -> str:
    with sqlite3.connect(path) as connection:
        (value,) = connection.execute("SELECT password_hash FROM users WHERE name = ?", (name,)).fetchone()
    return str(value)


@pytest.mark.parametrize(
    ("name", "role", "password", "site", "message"),
    [
        ("", "monitor", PASSWORD, None, "user name ''"),
        ("a" * 65, "monitor", PASSWORD, None, "1-64"),
        ("mona lisa", "monitor", PASSWORD, None, "user name 'mona lisa'"),
        ("mona/../x", "monitor", PASSWORD, None, "user name"),
        ("mona", "superuser", PASSWORD, None, "unknown role 'superuser'"),
        ("mona", "Monitor", PASSWORD, None, "unknown role"),
        ("sid", "site", PASSWORD, None, "a site user needs a site"),
        ("mona", "monitor", PASSWORD, "SITE-01", "only a site user has a site"),
        ("sid", "site", PASSWORD, "", "site ''"),
        ("sid", "site", PASSWORD, "-SITE", "site '-SITE'"),
        ("mona", "monitor", "eleven char", None, "shorter than 12"),
        ("mona", "monitor", "x" * 1025, None, "longer than 1024"),
    ],
    ids=[
        "empty-name", "long-name", "space-in-name", "slash-in-name", "unknown-role", "role-case",
        "site-without-site", "monitor-with-site", "empty-site", "bad-site", "short-password", "long-password",
    ],
)  # fmt: skip
def test_bad_users_are_refused(
    store: UserStore, name: str, role: str, password: str, site: str | None, message: str
) -> None:
    with pytest.raises(UserError, match=message) as refused:
        store.add(name, role, password, site=site)
    assert password not in str(refused.value)  # never shown, not even in an error
    assert store.count() == 0


@pytest.mark.parametrize(
    ("password", "advice"),
    [
        ("aaaaaaaaaaaa", "Repeats"),
        (" " * 12, "Repeats"),
        ("password1234", "very common password"),
        ("qwertyuiopas", "commonly used"),
        ("mona.lisa.2025", "too easy to guess"),
        ("trialguard12", "too easy to guess"),
    ],
    ids=["repeated-letter", "twelve-spaces", "common-password", "keyboard-row", "own-name", "product-name"],
)
def test_guessable_passwords_of_twelve_characters_or_more_are_refused(
    store: UserStore, password: str, advice: str
) -> None:
    with pytest.raises(UserError, match="too easy to guess") as refused:
        store.add("mona.lisa", "monitor", password)
    assert advice in str(refused.value)
    assert password not in str(refused.value)
    assert store.count() == 0


def test_a_passphrase_is_accepted(store: UserStore) -> None:
    assert store.add("mona", "monitor", "violet tractor honest lamp").name == "mona"


def test_a_duplicate_name_is_refused(store: UserStore) -> None:
    store.add("mona", Role.MONITOR, PASSWORD)
    with pytest.raises(UserError, match="a user named 'mona' already exists"):
        store.add("mona", Role.DATA_MANAGER, PASSWORD + "!")
    assert store.list_users() == [User("mona", Role.MONITOR, None)]


def test_list_and_count(store: UserStore) -> None:
    store.add("zed", Role.AUDITOR, PASSWORD)
    store.add("ada", Role.ADMIN, PASSWORD)
    assert [u.name for u in store.list_users()] == ["ada", "zed"]
    assert store.count() == 2


def test_token_round_trip(store: UserStore) -> None:
    dana = store.add("dana", Role.DATA_MANAGER, PASSWORD)
    first, second = store.issue_token("dana"), store.issue_token("dana")
    assert first != second
    assert len(first) >= 43  # 32 random bytes, base64url
    assert store.user_for_token(first) == dana
    assert store.user_for_token(second) == dana
    assert store.user_for_token(first[:-1]) is None
    assert store.user_for_token("") is None


def test_tokens_are_stored_only_as_digests(store: UserStore) -> None:
    store.add("dana", Role.DATA_MANAGER, PASSWORD)
    token = store.issue_token("dana")
    contents = store.path.read_bytes()
    assert token.encode() not in contents
    assert PASSWORD.encode() not in contents


def test_logs_never_hold_a_password_or_token(store: UserStore, logged: RecordingLog) -> None:  # noqa: F811
    store.add("dana", Role.DATA_MANAGER, PASSWORD)
    assert store.authenticate("dana", PASSWORD) is not None
    token = store.issue_token("dana")
    assert store.user_for_token(token) is not None
    assert len(logged.entries) == 2  # added, token issued
    assert all(PASSWORD not in entry and token not in entry for entry in logged.entries)


def test_a_token_for_an_unknown_user_is_refused(store: UserStore) -> None:
    with pytest.raises(UserError, match="no user named 'ghost'"):
        store.issue_token("ghost")


def test_the_file_is_private(store: UserStore) -> None:
    store.add("mona", Role.MONITOR, PASSWORD)
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600


def test_a_lax_existing_file_is_made_private(tmp_path: Path) -> None:
    path = tmp_path / "users.sqlite3"
    path.touch(mode=0o644)
    path.chmod(0o644)
    UserStore(path, hasher=CHEAP)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_threads_share_one_store(store: UserStore) -> None:
    errors: list[BaseException] = []

    def add(number: int) -> None:
        try:
            store.add(f"user{number}", Role.MONITOR, PASSWORD)
            assert store.authenticate(f"user{number}", PASSWORD) is not None
            store.issue_token(f"user{number}")
        except BaseException as e:  # reported by the main thread
            errors.append(e)

    threads = [threading.Thread(target=add, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert store.count() == 8
