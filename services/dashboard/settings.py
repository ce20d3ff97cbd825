"""Where the dashboard listens, where it keeps its files, and which broker and study it reads."""

from __future__ import annotations

import argparse
import os
import secrets
from dataclasses import dataclass, field, replace
from pathlib import Path

from services.http_limits import add_http_limit_args
from services.kafka import KafkaSettings

DEFAULT_DATA_DIR = ".trialguard/dashboard"

DEFAULT_OVERDUE_DAYS = 14
"""Days after its event an unresolved finding is overdue, unless the study is given its own."""

MAX_BODY_BYTES = 64 * 1024
"""The largest request body: a login or a review is a few KB (a review's texts are bounded)."""


def default_data_dir() -> Path:
    """``TRIALGUARD_DASHBOARD_DATA``, else ``.trialguard/dashboard`` under the working directory."""
    return Path(os.environ.get("TRIALGUARD_DASHBOARD_DATA") or DEFAULT_DATA_DIR)


@dataclass(frozen=True)
class DashboardSettings:
    """The settings of one dashboard process.

    Attributes:
        kafka: broker and study.
        data_dir: the read model (disposable), the users (not disposable) and the session key.
        host: address to listen on; loopback unless told otherwise.
        port: port to listen on (0: any free port).
        secure_cookies: send the session cookie over HTTPS only (behind a TLS proxy).
        review_wait_seconds: how long a review waits to appear in the read model before the page
            answers anyway (the review is already safe in Kafka by then).
        studies: the studies served, in this order (the switcher's); empty: ``kafka.study_id``
            alone. ``trialguard dashboard serve`` fills it (every installed study by default).
        overdue_days: days after its event an unresolved finding is overdue, per study
            (``queues``); a study not named here uses ``DEFAULT_OVERDUE_DAYS``.
        notifier_url: the notifier's base URL (its ``/operations`` is shown on the operations
            page); None: the page says the notifier is not configured.
    """

    kafka: KafkaSettings = field(default_factory=KafkaSettings)
    data_dir: Path = field(default_factory=default_data_dir)
    host: str = field(default_factory=lambda: os.environ.get("TRIALGUARD_DASHBOARD_HOST", "127.0.0.1"))
    port: int = field(default_factory=lambda: int(os.environ.get("TRIALGUARD_DASHBOARD_PORT", "8080")))
    secure_cookies: bool = False
    review_wait_seconds: float = 10.0
    studies: tuple[str, ...] = ()
    overdue_days: tuple[tuple[str, int], ...] = ()
    notifier_url: str | None = None

    @property
    def served_studies(self) -> tuple[str, ...]:
        """The studies this dashboard serves, the first one first."""
        return self.studies or (self.kafka.study_id,)

    def kafka_of(self, study_id: str) -> KafkaSettings:
        """The broker settings with one study's topics."""
        return replace(self.kafka, study_id=study_id)

    def read_model_path_of(self, study_id: str) -> Path:
        """One study's read model: a file per study, so no query can reach another study's rows."""
        return self.data_dir / f"read-model.{study_id}.sqlite3"

    def overdue_days_of(self, study_id: str) -> int:
        """Days after its event an unresolved finding of the study is overdue."""
        return dict(self.overdue_days).get(study_id, DEFAULT_OVERDUE_DAYS)

    @property
    def read_model_path(self) -> Path:
        """The read model of the first study served."""
        return self.read_model_path_of(self.served_studies[0])

    @property
    def users_path(self) -> Path:
        return self.data_dir / "users.sqlite3"

    def session_key(self) -> str:
        """The key that signs session cookies: made once, kept (mode 0600) so logins survive restarts."""
        path = self.data_dir / "session.key"
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(secrets.token_urlsafe(48))
        return path.read_text().strip()


def add_serve_args(parser: argparse.ArgumentParser) -> None:
    """The dashboard's own options (the broker and study options are the CLI's common ones)."""
    parser.add_argument(
        "--host",
        default=os.environ.get("TRIALGUARD_DASHBOARD_HOST", "127.0.0.1"),
        help="address to listen on (env TRIALGUARD_DASHBOARD_HOST; default %(default)s)",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=os.environ.get("TRIALGUARD_DASHBOARD_PORT", "8080"),
        help="port to listen on (env TRIALGUARD_DASHBOARD_PORT; 0: any free port; default %(default)s)",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=default_data_dir(),
        help="read model (disposable), users and session key (env TRIALGUARD_DASHBOARD_DATA; default %(default)s)",
    )
    parser.add_argument(
        "--secure-cookies", action="store_true", help="send the session cookie over HTTPS only (behind a TLS proxy)"
    )
    parser.add_argument(
        "--overdue-days",
        action="append",
        default=[],
        metavar="[STUDY=]DAYS",
        help=f"days after its event an unresolved finding is overdue: DAYS for every study, STUDY=DAYS for one "
        f"(repeatable; env TRIALGUARD_DASHBOARD_OVERDUE_DAYS, the same form, comma-separated; default "
        f"{DEFAULT_OVERDUE_DAYS})",
    )
    parser.add_argument(
        "--notifier-url",
        default=os.environ.get("TRIALGUARD_NOTIFIER_URL") or None,
        help="the notifier's base URL, e.g. http://127.0.0.1:8083: its deliveries and dead letters on the "
        "operations page (env TRIALGUARD_NOTIFIER_URL; default: none, the page says it is not configured)",
    )
    add_http_limit_args(parser, "TRIALGUARD_DASHBOARD", MAX_BODY_BYTES)


def parse_overdue_days(values: list[str], studies: tuple[str, ...]) -> tuple[tuple[str, int], ...]:
    """``--overdue-days`` values (and the variable's) as (study, days) for every served study.

    Raises:
        ValueError: a value that is not DAYS or STUDY=DAYS with DAYS 1-3650, or a study not served.
    """
    given = [v.strip() for v in (os.environ.get("TRIALGUARD_DASHBOARD_OVERDUE_DAYS", "").split(",") + values)]
    days = dict.fromkeys(studies, DEFAULT_OVERDUE_DAYS)
    for value in filter(None, given):
        study, _, number = value.rpartition("=")
        if not number.isdigit() or not 1 <= int(number) <= 3650:
            raise ValueError(f"--overdue-days {value[:60]!r}: expected DAYS or STUDY=DAYS, DAYS from 1 to 3650")
        if study and study not in studies:
            raise ValueError(f"--overdue-days {value[:60]!r}: study {study[:40]!r} is not served here")
        for each in [study] if study else studies:
            days[each] = int(number)
    return tuple(days.items())
