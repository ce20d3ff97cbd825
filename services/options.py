"""Command-line options every TrialGuard command shares, and the checks of their values."""

from __future__ import annotations

import argparse
import os
import re

from services.errors import ConfigurationError
from services.kafka import add_kafka_args, settings_from_args

__all__ = ["TOPIC_NAME_PART", "add_kafka_args", "check_names", "env_int", "settings_from_args"]

TOPIC_NAME_PART = re.compile(r"[A-Za-z0-9._-]{1,100}")


def env_int(name: str, default: int) -> int:
    """An integer setting from the environment.

    Raises:
        ConfigurationError: the variable is set but is not an integer.
    """
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigurationError(f"{name}={raw[:40]!r} is not an integer") from None


def check_names(args: argparse.Namespace) -> None:
    """Topic names are built from the study and namespace: the broker takes only these characters.

    Raises:
        ConfigurationError: naming the option and the value.
    """
    for option, value in (("--study", args.study), ("--namespace", args.namespace)):
        if not TOPIC_NAME_PART.fullmatch(value):
            raise ConfigurationError(f"{option} {value[:60]!r}: a topic name part is 1-100 of A-Z a-z 0-9 . _ -")
