"""`trialguard users`: add, passwd, token and list from the command line (the user store itself:
test_users.py)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from contracts import AccessChanged
from services.dashboard.roles import Role, User
from services.dashboard.users import UserStore
from services.dashboard.users_cli import users_add, users_list, users_passwd, users_token
from tests.access import recording
from tests.unit.users_support import CHEAP, PASSWORD, logged, parse  # noqa: F401  (logged: the autouse fixture)


@pytest.fixture
def cheap_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("services.dashboard.users.PasswordHasher", lambda: CHEAP)


@pytest.mark.usefixtures("cheap_hashing")
def test_cli_add_prints_a_set_password_link_and_no_password(tmp_path: Path) -> None:
    out, err = io.StringIO(), io.StringIO()
    events: list[AccessChanged] = []
    args = parse("users", "add", "sid", "--role", "site", "--site", "SITE-01", "--data-dir", str(tmp_path))
    assert args.sync is True
    assert args.run(args, stdout=out, stderr=err, recorder=recording(events)) == 0
    link = out.getvalue().strip()
    assert link.startswith("http://127.0.0.1:8080/set-password?token=")
    assert "added sid (site, site SITE-01 in study NCT06904729)" in err.getvalue()
    store = UserStore(tmp_path / "users.sqlite3", hasher=CHEAP)
    token = link.rsplit("=", 1)[1]
    assert store.user_for_link(token) == User("sid", Role.SITE, "SITE-01")
    assert store.authenticate("sid", "") is None  # no password until sid chooses one
    (event,) = events
    assert (event.action, event.operator, event.subject, event.role, event.site) == (
        "user-added",
        "ops",
        "sid",
        "site",
        "SITE-01",
    )
    assert token not in event.model_dump_json()

    out = io.StringIO()
    args = parse("users", "token", "sid", "--data-dir", str(tmp_path))
    assert users_token(args, stdout=out, stderr=err, recorder=recording(events)) == 0
    assert store.user_for_token(out.getvalue().strip()) == User("sid", Role.SITE, "SITE-01")

    out = io.StringIO()
    assert users_list(parse("users", "list", "--data-dir", str(tmp_path)), stdout=out, stderr=err) == 0
    assert out.getvalue().split() == ["sid", "site", "SITE-01", "password-not-set", "NCT06904729=site@SITE-01"]


@pytest.mark.usefixtures("cheap_hashing")
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["sid", "--role", "site"], "a site user needs a site"),
        (["bad name", "--role", "monitor"], "user name 'bad name'"),
    ],
    ids=["site-without-site", "bad-name"],
)
def test_cli_add_errors(tmp_path: Path, argv: list[str], message: str) -> None:
    out, err = io.StringIO(), io.StringIO()
    events: list[AccessChanged] = []
    args = parse("users", "add", *argv, "--data-dir", str(tmp_path))
    assert users_add(args, stdout=out, stderr=err, recorder=recording(events)) == 2
    assert err.getvalue().startswith("trialguard users add: ")
    assert message in err.getvalue()
    assert out.getvalue() == ""
    assert events == []


@pytest.mark.usefixtures("cheap_hashing")
@pytest.mark.parametrize(
    ("stdin", "message"),
    [("", "no password"), ("\nsecond line is not read\n", "no password"), ("too short\n", "shorter than 12")],
    ids=["empty-stdin", "empty-first-line", "short-password"],
)
def test_cli_passwd_errors(tmp_path: Path, stdin: str, message: str) -> None:
    UserStore(tmp_path / "users.sqlite3", hasher=CHEAP).add("mona", Role.MONITOR)
    err = io.StringIO()
    events: list[AccessChanged] = []
    args = parse("users", "passwd", "mona", "--data-dir", str(tmp_path))
    assert (
        users_passwd(args, stdin=io.StringIO(stdin), stdout=io.StringIO(), stderr=err, recorder=recording(events)) == 2
    )
    assert message in err.getvalue()
    assert events == []


@pytest.mark.usefixtures("cheap_hashing")
def test_cli_add_duplicate_and_passwd_crlf(tmp_path: Path) -> None:
    args = parse("users", "add", "mona", "--role", "monitor", "--data-dir", str(tmp_path))
    assert users_add(args, stdout=io.StringIO(), stderr=io.StringIO(), recorder=recording([])) == 0
    passwd = parse("users", "passwd", "mona", "--data-dir", str(tmp_path))
    assert users_passwd(passwd, stdin=io.StringIO(PASSWORD + "\r\n"), stdout=io.StringIO(), recorder=recording([])) == 0
    assert UserStore(tmp_path / "users.sqlite3", hasher=CHEAP).authenticate("mona", PASSWORD) is not None
    err = io.StringIO()
    assert users_add(args, stdout=io.StringIO(), stderr=err, recorder=recording([])) == 2
    assert err.getvalue() == "trialguard users add: a user named 'mona' already exists\n"


@pytest.mark.usefixtures("cheap_hashing")
@pytest.mark.parametrize("with_store", [True, False], ids=["unknown-user", "no-store"])
def test_cli_token_for_an_unknown_user(tmp_path: Path, with_store: bool) -> None:
    if with_store:
        UserStore(tmp_path / "users.sqlite3", hasher=CHEAP)
    out, err = io.StringIO(), io.StringIO()
    args = parse("users", "token", "ghost", "--data-dir", str(tmp_path))
    assert users_token(args, stdout=out, stderr=err, recorder=recording([])) == 1
    assert err.getvalue().startswith("trialguard users token: ")
    assert out.getvalue() == ""


def test_cli_list_creates_nothing(tmp_path: Path) -> None:
    data_dir = tmp_path / "absent"
    err = io.StringIO()
    assert users_list(parse("users", "list", "--data-dir", str(data_dir)), stdout=io.StringIO(), stderr=err) == 0
    assert "no users" in err.getvalue()
    assert not data_dir.exists()


def test_cli_data_dir_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TRIALGUARD_DASHBOARD_DATA", str(tmp_path))
    assert parse("users", "list").data_dir == tmp_path
    monkeypatch.delenv("TRIALGUARD_DASHBOARD_DATA")
    assert parse("users", "list").data_dir == Path(".trialguard/dashboard")


def test_cli_refuses_an_unknown_role(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        parse("users", "add", "mona", "--role", "superuser")
    assert exited.value.code == 2
    assert "invalid choice: 'superuser'" in capsys.readouterr().err
