"""``trialguard users``: the lifecycle of dashboard users and their API tokens.

``add`` (prints a one-time set-password link), ``passwd`` (an operator's reset from standard input,
or ``--link`` for a new set-password link), ``disable``, ``enable``, ``remove``, ``role``,
``revoke-role``, ``token`` (with an expiry), ``tokens`` (list, never the secrets), ``revoke-token``,
``list``.

Roles are per study: ``add`` and ``role`` give the role in the study of ``--study`` (the access log
the change goes to), ``revoke-role`` takes it away there; ``list`` shows each user's role per study.

Every change is published to the study's access log (operator = the OS user) before it is kept;
a change to the user as a whole (password, disable, enable, remove, tokens) goes to the access
log of every study the user has a role in as well, since it changes what they can do in each:
when Kafka does not take it, nothing changes and the command exits 3. Each subcommand sets
``run=`` and ``sync=True`` so ``main`` calls it directly.

Exit status: 0 done; 1 no such user or token; 2 a change refused as asked, or an unusable store;
3 the access log (Kafka) did not take the change, so nothing changed.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sqlite3
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Final, TextIO
from urllib.parse import urlencode

from contracts.access import AccessChanged
from services.access_log import AccessLogError, AccessRecorder, cli_recorder, os_operator, publish_to_kafka
from services.dashboard.credentials import LINK_HOURS, MAX_TOKEN_DAYS, TOKEN_DAYS
from services.dashboard.roles import Role
from services.dashboard.users import UserError, UserStore
from services.kafka import add_kafka_args, settings_from_args

DATA_DIR_ENV: Final = "TRIALGUARD_DASHBOARD_DATA"
DEFAULT_DATA_DIR: Final = Path(".trialguard/dashboard")
USERS_FILE: Final = "users.sqlite3"
URL_ENV: Final = "TRIALGUARD_DASHBOARD_URL"

Change = Callable[[UserStore, AccessRecorder], str]
"""One change to the store; returns what to print on stdout (may be empty)."""


def users_path(data_dir: str | Path) -> Path:
    """The user store inside a dashboard data directory."""
    return Path(data_dir) / USERS_FILE


def _read_password(name: str, stdin: TextIO) -> str:
    """The password: typed without echo on a terminal, else the first line of standard input."""
    if stdin.isatty():
        return getpass.getpass(f"new password for {name}: ")
    # Only the line end goes: spaces are part of a passphrase. "\r\n" comes from Windows pipes.
    return stdin.readline().removesuffix("\n").removesuffix("\r")


def _fail(command: str, message: str, stderr: TextIO, status: int) -> int:
    print(f"trialguard users {command}: {message}", file=stderr)
    return status


def _link(args: argparse.Namespace, token: str) -> str:
    return str(args.dashboard_url).rstrip("/") + "/set-password?" + urlencode({"token": token})


def _change(
    args: argparse.Namespace,
    change: Change,
    stdout: TextIO | None,
    stderr: TextIO | None,
    recorder: AccessRecorder | None,
    *,
    must_exist: bool = True,
    whole_user: bool = False,
) -> int:
    """Run one change against the store with the access-log recorder, mapping errors to statuses."""
    stdout, stderr = stdout or sys.stdout, stderr or sys.stderr
    path = users_path(args.data_dir)
    name = getattr(args, "name", None)
    if must_exist and not path.exists():
        return _fail(args.action, f"there is no user store at {path}", stderr, 1)
    try:
        store = UserStore(path)
        if must_exist and name is not None and store.get(name) is None:
            return _fail(args.action, f"no user named {name[:80]!r}", stderr, 1)
        if recorder is None:
            recorder = _whole_user_recorder(store, args) if whole_user else cli_recorder(settings_from_args(args))
        printed = change(store, recorder)
    except UserError as e:
        return _fail(args.action, str(e), stderr, 1 if str(e).startswith("no token") else 2)
    except AccessLogError as e:
        return _fail(args.action, str(e), stderr, 3)
    except (OSError, sqlite3.Error) as e:
        return _fail(args.action, f"cannot use {path}: {e}", stderr, 2)
    if printed:
        print(printed, file=stdout)
    return 0


def _whole_user_recorder(store: UserStore, args: argparse.Namespace) -> AccessRecorder:
    """A recorder that publishes each change to ``--study``'s access log and to that of every
    study the user (named by ``args.name``, or owning ``args.token_id``) has a role in."""
    settings = settings_from_args(args)
    name = getattr(args, "name", None) or store.token_owner(args.token_id)
    user = store.get(name) if name else None
    studies = sorted({settings.study_id, *(held.study_id for held in (user.studies if user else ()))})

    def publish(event: AccessChanged) -> None:
        for study in studies:
            copy = event.model_copy(update={"study_id": study})
            asyncio.run(publish_to_kafka(replace(settings, study_id=study), copy))

    return AccessRecorder(settings.study_id, os_operator(), "cli", publish)


def users_add(args: argparse.Namespace, stdout: TextIO | None = None, stderr: TextIO | None = None,
              recorder: AccessRecorder | None = None) -> int:  # fmt: skip
    """``users add NAME --role ROLE [--site SITE]``: prints the user's one-time set-password link."""
    err = stderr or sys.stderr

    def add(store: UserStore, changes: AccessRecorder) -> str:
        user = store.add(args.name, args.role, site=args.site, recorder=changes)
        token = store.issue_password_link(user.name, changes, new_user=True)
        site = f", site {user.site}" if user.site else ""
        print(f"added {user.name} ({user.role.value}{site} in study {changes.study_id}); their set-password link, "
              f"valid once for "
              f"{LINK_HOURS} hours (give it to them; nobody else should open it):", file=err)  # fmt: skip
        return _link(args, token)

    return _change(args, add, stdout, stderr, recorder, must_exist=False)


def users_passwd(args: argparse.Namespace, stdin: TextIO | None = None, stdout: TextIO | None = None,
                 stderr: TextIO | None = None, recorder: AccessRecorder | None = None) -> int:  # fmt: skip
    """``users passwd NAME [--link]``: an operator's reset (stdin), or a new set-password link."""
    if args.link:
        return _change(
            args, lambda store, changes: _link(args, store.issue_password_link(args.name, changes)),
            stdout, stderr, recorder, whole_user=True,
        )  # fmt: skip
    password = _read_password(args.name, stdin or sys.stdin)
    if not password:
        return _fail("passwd", "no password: write it as the first line of standard input", stderr or sys.stderr, 2)

    def reset(store: UserStore, changes: AccessRecorder) -> str:
        store.set_password(args.name, password, changes)
        return f"password of {args.name} changed; their sessions ended"

    return _change(args, reset, stdout, stderr, recorder, whole_user=True)


def users_state(args: argparse.Namespace, stdout: TextIO | None = None, stderr: TextIO | None = None,
                recorder: AccessRecorder | None = None) -> int:  # fmt: skip
    """``users disable|enable|remove NAME``."""

    def apply(store: UserStore, changes: AccessRecorder) -> str:
        if args.action == "remove":
            store.remove(args.name, changes)
            return f"removed {args.name}, their tokens and links"
        store.set_enabled(args.name, args.action == "enable", changes)
        return f"{args.action}d {args.name}" + ("; their sessions ended" if args.action == "disable" else "")

    return _change(args, apply, stdout, stderr, recorder, whole_user=True)


def users_role(args: argparse.Namespace, stdout: TextIO | None = None, stderr: TextIO | None = None,
               recorder: AccessRecorder | None = None) -> int:  # fmt: skip
    """``users role NAME --role ROLE [--site SITE]``."""

    def apply(store: UserStore, changes: AccessRecorder) -> str:
        user = store.set_role(args.name, args.role, args.site, changes)
        site = f" of site {user.site}" if user.site else ""
        return f"{user.name} is now {user.role.value}{site} in study {user.study}"

    return _change(args, apply, stdout, stderr, recorder)


def users_revoke_role(args: argparse.Namespace, stdout: TextIO | None = None, stderr: TextIO | None = None,
                      recorder: AccessRecorder | None = None) -> int:  # fmt: skip
    """``users revoke-role NAME --study STUDY``: the user sees nothing of that study any more."""

    def apply(store: UserStore, changes: AccessRecorder) -> str:
        store.revoke_role(args.name, changes)
        return f"{args.name} has no role in study {changes.study_id} any more; their sessions ended"

    return _change(args, apply, stdout, stderr, recorder)


def users_token(args: argparse.Namespace, stdout: TextIO | None = None, stderr: TextIO | None = None,
                recorder: AccessRecorder | None = None) -> int:  # fmt: skip
    """``users token NAME [--expires-days N]``: prints a new API bearer token (alone on stdout)."""
    return _change(
        args, lambda store, changes: store.issue_token(args.name, changes, days=args.expires_days),
        stdout, stderr, recorder, whole_user=True,
    )  # fmt: skip


def users_revoke_token(args: argparse.Namespace, stdout: TextIO | None = None, stderr: TextIO | None = None,
                       recorder: AccessRecorder | None = None) -> int:  # fmt: skip
    """``users revoke-token ID``: the token stops working at once."""

    def apply(store: UserStore, changes: AccessRecorder) -> str:
        return f"revoked token {args.token_id} of {store.revoke_token(args.token_id, changes)}"

    return _change(args, apply, stdout, stderr, recorder, whole_user=True)


def users_tokens(args: argparse.Namespace, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    """``users tokens NAME``: id, created, expires, revoked — never a token."""
    stdout, stderr = stdout or sys.stdout, stderr or sys.stderr
    path = users_path(args.data_dir)
    if not path.exists():
        return _fail("tokens", f"there is no user store at {path}", stderr, 1)
    try:
        tokens = UserStore(path).tokens_of(args.name)
    except UserError as e:
        return _fail("tokens", str(e), stderr, 1)
    except (OSError, sqlite3.Error) as e:
        return _fail("tokens", f"cannot use {path}: {e}", stderr, 2)
    for t in tokens:
        print(f"{t.token_id}\t{t.created_at}\t{t.expires_at}\t{t.revoked_at or '-'}", file=stdout)
    return 0


def users_list(args: argparse.Namespace, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    """``users list``: one line per user (name, role and site last given, state, role per study), by name."""
    stdout, stderr = stdout or sys.stdout, stderr or sys.stderr
    path = users_path(args.data_dir)
    if not path.exists():
        # Listing must not create the store (nor its directory) as a side effect.
        print(f"no users: there is no user store at {path}", file=stderr)
        return 0
    try:
        store = UserStore(path)
        users = [(u, store.get(u["name"])) for u in store.list_states()]
    except (OSError, sqlite3.Error) as e:
        return _fail("list", f"cannot use {path}: {e}", stderr, 2)
    for u, user in users:
        state = "disabled" if not u["enabled"] else ("active" if u["has_password"] else "password-not-set")
        held = [
            f"{r.study_id}={r.role.value}" + (f"@{r.site}" if r.site else "") for r in (user.studies if user else ())
        ]
        line = f"{u['name']:<24} {u['role']:<13} {u['site'] or '-':<12} {state:<16} {','.join(held) or '(no study)'}"
        print(line, file=stdout)
    return 0


def _common(parser: argparse.ArgumentParser, *, changes: bool = True) -> None:
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path(os.environ.get(DATA_DIR_ENV) or DEFAULT_DATA_DIR),
        metavar="DIR",
        help=f"the dashboard's data directory; users are in DIR/{USERS_FILE} (env {DATA_DIR_ENV}; default %(default)s)",
    )
    if changes:
        add_kafka_args(parser)  # the access log's broker and study


def _url_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dashboard-url",
        default=os.environ.get(URL_ENV) or "http://127.0.0.1:8080",
        help=f"the dashboard's address as users reach it, for the set-password link (env {URL_ENV}; "
        "default %(default)s)",
    )


def add_users_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``trialguard users …`` on the subcommands of ``trialguard``."""
    users = commands.add_parser("users", help="the dashboard's users and their API tokens").add_subparsers(
        dest="action", required=True
    )
    status = "Exit status: 0 done, 1 no such user, 2 refused as asked, 3 the access log (Kafka) did not take it."

    add = users.add_parser("add", help="add a user; prints their one-time set-password link",
                           description="Add a dashboard user without a password and print a set-password link "
                           f"(valid once, {LINK_HOURS} hours) with which they choose it. " + status)  # fmt: skip
    add.add_argument("name", help="login name: 1-64 of A-Z a-z 0-9 . _ @ -")
    add.add_argument("--role", required=True, choices=[role.value for role in Role], help="the user's role")
    add.add_argument("--site", help="the site id of a site user (required for --role site, refused otherwise)")
    _url_arg(add)
    add.set_defaults(run=users_add)

    passwd = users.add_parser("passwd", help="reset a user's password (stdin) or issue a new set-password link",
                              description="Set a user's password from the first line of standard input (typed "
                              "without echo on a terminal), or with --link print a new set-password link. The "
                              "user's sessions end. " + status)  # fmt: skip
    passwd.add_argument("name")
    passwd.add_argument("--link", action="store_true", help="print a new set-password link instead")
    _url_arg(passwd)
    passwd.set_defaults(run=users_passwd)

    states = (
        ("disable", "refuse the user's login, sessions and tokens at once"),
        ("enable", "let a disabled user in again"),
        ("remove", "remove the user with their tokens; the name may be added again, anew"),
    )
    for action, what in states:
        parser = users.add_parser(action, help=what, description=what + ". " + status)
        parser.add_argument("name")
        parser.set_defaults(run=users_state)

    role = users.add_parser("role", help="give a user a role in the study of --study (their sessions end)")
    role.add_argument("name")
    role.add_argument("--role", required=True, choices=[r.value for r in Role])
    role.add_argument("--site", help="the site id, for --role site")
    role.set_defaults(run=users_role)

    revoke_role = users.add_parser("revoke-role", help="take a user's role in the study of --study away")
    revoke_role.add_argument("name")
    revoke_role.set_defaults(run=users_revoke_role)

    token = users.add_parser("token", help="print a new API bearer token for a user",
                             description="Print a new API bearer token (shown once; only its SHA-256 is kept). "
                             "Earlier tokens stay valid until they expire or are revoked. " + status)  # fmt: skip
    token.add_argument("name")
    token.add_argument("--expires-days", type=int, default=TOKEN_DAYS, metavar="N",
                       help=f"days the token lasts, 1-{MAX_TOKEN_DAYS} (default %(default)s)")  # fmt: skip
    token.set_defaults(run=users_token)

    revoke = users.add_parser("revoke-token", help="revoke an API token by its id (see `users tokens`)")
    revoke.add_argument("token_id", metavar="ID")
    revoke.set_defaults(run=users_revoke_token)

    tokens = users.add_parser("tokens", help="list a user's API tokens: id, created, expires, revoked")
    tokens.add_argument("name")
    listing = users.add_parser("list", help="list the dashboard's users: name, role, site, state")
    changing = ("disable", "enable", "remove")
    for parser in (add, passwd, role, revoke_role, token, revoke, *(users.choices[a] for a in changing)):
        _common(parser)
        parser.set_defaults(sync=True)
    for parser, run in ((tokens, users_tokens), (listing, users_list)):
        _common(parser, changes=False)
        parser.set_defaults(run=run, sync=True)
