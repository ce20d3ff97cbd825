"""``trialguard users``: add dashboard users, issue their API tokens, list them.

Wired into ``services/cli.py`` by one line in ``build_parser``: ``add_users_commands(commands)``.
Each subcommand sets ``run=`` (a function of the parsed arguments returning the exit status) and
``sync=True``, as ``trialguard replay`` does, so ``main`` calls it directly.

Exit status: 0 done; 1 ``users token`` for a user who does not exist; 2 a user that cannot be
added as asked, or a user store that cannot be opened.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sqlite3
import sys
from pathlib import Path
from typing import Final, TextIO

from services.dashboard.roles import Role
from services.dashboard.users import UserError, UserStore

DATA_DIR_ENV: Final = "TRIALGUARD_DASHBOARD_DATA"
DEFAULT_DATA_DIR: Final = Path(".trialguard/dashboard")
USERS_FILE: Final = "users.sqlite3"


def users_path(data_dir: str | Path) -> Path:
    """The user store inside a dashboard data directory."""
    return Path(data_dir) / USERS_FILE


def _data_dir_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path(os.environ.get(DATA_DIR_ENV) or DEFAULT_DATA_DIR),
        metavar="DIR",
        help=f"the dashboard's data directory; users are in DIR/{USERS_FILE} (env {DATA_DIR_ENV}; default %(default)s)",
    )


def _read_password(name: str, stdin: TextIO) -> str:
    """The password: typed without echo on a terminal, else the first line of standard input."""
    if stdin.isatty():
        return getpass.getpass(f"password for {name}: ")
    line = stdin.readline()
    # Only the line end goes: spaces are part of a passphrase. "\r\n" comes from Windows pipes.
    return line.removesuffix("\n").removesuffix("\r")


def _fail(command: str, message: str, stderr: TextIO, status: int) -> int:
    print(f"trialguard users {command}: {message}", file=stderr)
    return status


def users_add(
    args: argparse.Namespace, stdin: TextIO | None = None, stdout: TextIO | None = None, stderr: TextIO | None = None
) -> int:
    """``trialguard users add NAME --role ROLE [--site SITE]``: the password comes from standard input.

    Args:
        args: ``name``, ``role``, ``site`` and ``data_dir``.
        stdin: Where the password is read (default ``sys.stdin``).
        stdout: Where the confirmation goes (default ``sys.stdout``).
        stderr: Where errors go (default ``sys.stderr``).

    Returns:
        0 added; 2 no password, a user that cannot be added as asked, or an unusable store.
    """
    stdin, stdout, stderr = stdin or sys.stdin, stdout or sys.stdout, stderr or sys.stderr
    password = _read_password(args.name, stdin)
    if not password:
        return _fail("add", "no password: write it as the first line of standard input", stderr, 2)
    try:
        user = UserStore(users_path(args.data_dir)).add(args.name, args.role, password, site=args.site)
    except UserError as e:
        return _fail("add", str(e), stderr, 2)
    except (OSError, sqlite3.Error) as e:
        return _fail("add", f"cannot use {users_path(args.data_dir)}: {e}", stderr, 2)
    site = f", site {user.site}" if user.site else ""
    print(f"added {user.name} ({user.role.value}{site})", file=stdout)
    return 0


def users_token(args: argparse.Namespace, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    """``trialguard users token NAME``: print a new API bearer token for the user.

    Returns:
        0 printed; 1 no such user; 2 an unusable store.
    """
    stdout, stderr = stdout or sys.stdout, stderr or sys.stderr
    path = users_path(args.data_dir)
    if not path.exists():
        return _fail("token", f"no user named {args.name!r}: there is no user store at {path}", stderr, 1)
    try:
        token = UserStore(path).issue_token(args.name)
    except UserError as e:
        return _fail("token", str(e), stderr, 1)
    except (OSError, sqlite3.Error) as e:
        return _fail("token", f"cannot use {path}: {e}", stderr, 2)
    # The token goes to stdout alone, so `TOKEN=$(trialguard users token alice)` captures it.
    print(token, file=stdout)
    return 0


def users_list(args: argparse.Namespace, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    """``trialguard users list``: one line per user (name, role, site), by name.

    Returns:
        0 listed (nothing when there is no user store yet); 2 an unusable store.
    """
    stdout, stderr = stdout or sys.stdout, stderr or sys.stderr
    path = users_path(args.data_dir)
    if not path.exists():
        # Listing must not create the store (nor its directory) as a side effect.
        print(f"no users: there is no user store at {path}", file=stderr)
        return 0
    try:
        users = UserStore(path).list_users()
    except (OSError, sqlite3.Error) as e:
        return _fail("list", f"cannot use {path}: {e}", stderr, 2)
    for user in users:
        print(f"{user.name:<24} {user.role.value:<13} {user.site or '-'}", file=stdout)
    return 0


def add_users_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``trialguard users add|token|list`` on the subcommands of ``trialguard``.

    Args:
        commands: What ``build_parser`` got from ``parser.add_subparsers(...)``.
    """
    users = commands.add_parser("users", help="the dashboard's users and their API tokens").add_subparsers(
        dest="action", required=True
    )

    add = users.add_parser(
        "add",
        help="add a dashboard user; the password is the first line of standard input",
        description="Add a dashboard user. The password (at least 12 characters) is read from the first line "
        "of standard input, or typed without echo on a terminal; it is stored only as an argon2 hash. "
        "Exit status: 0 added, 2 the user cannot be added as asked.",
    )
    add.add_argument("name", help="login name: 1-64 of A-Z a-z 0-9 . _ @ -")
    add.add_argument("--role", required=True, choices=[role.value for role in Role], help="the user's role")
    add.add_argument("--site", help="the site id of a site user (required for --role site, refused otherwise)")
    _data_dir_arg(add)
    add.set_defaults(run=users_add, sync=True)

    token = users.add_parser(
        "token",
        help="print a new API bearer token for a user",
        description="Print a new API bearer token for a user; only its SHA-256 is stored, so it is shown once. "
        "Earlier tokens stay valid. Exit status: 0 printed, 1 no such user.",
    )
    token.add_argument("name", help="the user's login name")
    _data_dir_arg(token)
    token.set_defaults(run=users_token, sync=True)

    listing = users.add_parser("list", help="list the dashboard's users: name, role, site")
    _data_dir_arg(listing)
    listing.set_defaults(run=users_list, sync=True)
