"""The notifier's settings: where it keeps its file, how it reaches SMTP, how hard it retries."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path

from services.errors import ConfigurationError

DEFAULT_DATA_DIR = ".trialguard/notifier"


def default_data_dir() -> Path:
    """``TRIALGUARD_NOTIFIER_DATA``, else ``.trialguard/notifier`` under the working directory."""
    return Path(os.environ.get("TRIALGUARD_NOTIFIER_DATA") or DEFAULT_DATA_DIR)


def default_users_file() -> Path:
    """The dashboard's users file: the owners of subscriptions and their sites."""
    return Path(os.environ.get("TRIALGUARD_DASHBOARD_DATA") or ".trialguard/dashboard") / "users.sqlite3"


@dataclass(frozen=True)
class SmtpSettings:
    """The mail relay the notifier hands emails to."""

    host: str = "127.0.0.1"
    port: int = 25
    sender: str = "trialguard@localhost"
    starttls: bool = False
    username: str | None = None
    password: str | None = None


@dataclass(frozen=True)
class DeliverySettings:
    """How deliveries are retried.

    Attributes:
        max_attempts: failed attempts after which a delivery is a dead letter.
        backoff_seconds: the wait after the first failure; each next one doubles it.
        max_backoff_seconds: the longest wait between two attempts.
        timeout_seconds: how long one send may take (connect, TLS, answer).
        concurrency: sends at the same time.
        dashboard_url: the dashboard's base URL, for the finding's link in a notification.
    """

    max_attempts: int = 8
    backoff_seconds: float = 2.0
    max_backoff_seconds: float = 600.0
    timeout_seconds: float = 10.0
    concurrency: int = 4
    dashboard_url: str | None = None

    def retry_in(self, attempts: int) -> float:
        """Seconds to wait after the ``attempts``-th failure: exponential, capped."""
        return float(min(self.max_backoff_seconds, self.backoff_seconds * 2 ** max(0, attempts - 1)))


def add_data_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=default_data_dir(),
        help="subscriptions and outbox (env TRIALGUARD_NOTIFIER_DATA; default %(default)s)",
    )
    parser.add_argument(
        "--users-file",
        type=Path,
        default=default_users_file(),
        help="the dashboard's users file: subscription owners and their sites "
        "(default $TRIALGUARD_DASHBOARD_DATA/users.sqlite3, else %(default)s)",
    )


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name) or ""
    try:
        return default if not raw else float(raw)
    except ValueError:
        raise ConfigurationError(f"{name}={raw[:40]!r} is not a number") from None


def add_serve_args(parser: argparse.ArgumentParser) -> None:
    """The options of ``trialguard notifier serve`` (the Kafka options are the CLI's common ones)."""
    add_data_args(parser)
    env = os.environ.get
    parser.add_argument(
        "--host",
        default=env("TRIALGUARD_NOTIFIER_HOST", "127.0.0.1"),
        help="/health, /metrics, /operations listen here (env TRIALGUARD_NOTIFIER_HOST; default %(default)s)",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=int(env("TRIALGUARD_NOTIFIER_PORT", "8083")),
        help="port of /health, /metrics, /operations (env TRIALGUARD_NOTIFIER_PORT; default "
        "%(default)s; 0: any free port)",
    )
    parser.add_argument(
        "--smtp-host",
        default=env("TRIALGUARD_SMTP_HOST", "127.0.0.1"),
        help="mail relay (env TRIALGUARD_SMTP_HOST; default %(default)s)",
    )
    parser.add_argument(
        "--smtp-port",
        type=int,
        default=int(env("TRIALGUARD_SMTP_PORT", "25")),
        help="(env TRIALGUARD_SMTP_PORT; default %(default)s)",
    )
    parser.add_argument(
        "--smtp-from",
        default=env("TRIALGUARD_SMTP_FROM", "trialguard@localhost"),
        help="sender address (env TRIALGUARD_SMTP_FROM; default %(default)s)",
    )
    parser.add_argument(
        "--smtp-starttls",
        action="store_true",
        default=bool(env("TRIALGUARD_SMTP_STARTTLS")),
        help="upgrade with STARTTLS (env TRIALGUARD_SMTP_STARTTLS=1)",
    )
    parser.add_argument("--smtp-user", default=env("TRIALGUARD_SMTP_USER"), help="(env TRIALGUARD_SMTP_USER)")
    parser.add_argument(
        "--smtp-password-file",
        type=Path,
        default=env("TRIALGUARD_SMTP_PASSWORD_FILE"),
        help="a file holding the SMTP password (env TRIALGUARD_SMTP_PASSWORD_FILE)",
    )
    parser.add_argument(
        "--max-attempts",
        type=int,
        default=int(env("TRIALGUARD_NOTIFIER_MAX_ATTEMPTS", "8")),
        help="failed attempts before a delivery is a dead letter "
        "(env TRIALGUARD_NOTIFIER_MAX_ATTEMPTS; default %(default)s)",
    )
    parser.add_argument(
        "--backoff",
        type=float,
        default=_env_float("TRIALGUARD_NOTIFIER_BACKOFF", 2.0),
        help="seconds before the first retry, doubled each time (env TRIALGUARD_NOTIFIER_BACKOFF; default %(default)s)",
    )
    parser.add_argument(
        "--max-backoff",
        type=float,
        default=_env_float("TRIALGUARD_NOTIFIER_MAX_BACKOFF", 600.0),
        help="longest wait between attempts (env TRIALGUARD_NOTIFIER_MAX_BACKOFF; default %(default)s)",
    )
    parser.add_argument(
        "--dashboard-url",
        default=env("TRIALGUARD_DASHBOARD_URL"),
        help="the dashboard's base URL, linked from each notification (env TRIALGUARD_DASHBOARD_URL)",
    )


def smtp_from_args(args: argparse.Namespace) -> SmtpSettings:
    """Raises: ConfigurationError: the password file cannot be read."""
    password = None
    if args.smtp_password_file is not None:
        try:
            password = Path(args.smtp_password_file).read_text().strip()
        except OSError as e:
            raise ConfigurationError(f"--smtp-password-file {args.smtp_password_file}: {e.strerror}") from None
    return SmtpSettings(args.smtp_host, args.smtp_port, args.smtp_from, args.smtp_starttls, args.smtp_user, password)


def delivery_from_args(args: argparse.Namespace) -> DeliverySettings:
    """Raises: ConfigurationError: a bound that is not positive."""
    if args.max_attempts < 1:
        raise ConfigurationError(f"--max-attempts {args.max_attempts}: at least 1")
    if not 0 < args.backoff <= args.max_backoff:
        raise ConfigurationError(f"--backoff {args.backoff}: above 0 and at most --max-backoff ({args.max_backoff})")
    return DeliverySettings(args.max_attempts, args.backoff, args.max_backoff, dashboard_url=args.dashboard_url)
