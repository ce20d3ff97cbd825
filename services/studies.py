"""Which studies a process that serves several (``rules serve``, ``gateway serve``) serves."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

from protocol.registry import studies as installed_studies
from services.errors import ConfigurationError
from services.options import TOPIC_NAME_PART

STUDIES_HELP = "env TRIALGUARD_STUDY_ID, comma-separated; default: every installed protocol package's study"
"""What ``--study`` of such a command means when not given."""


def chosen_studies(named: Sequence[str] | None, installed: Callable[[], list[str]] = installed_studies) -> list[str]:
    """The studies to serve: those named (``--study``, repeatable), else those in
    TRIALGUARD_STUDY_ID (comma-separated), else every installed study; in the order given, once each.

    Raises:
        ConfigurationError: a name that cannot be part of a topic name, or no study at all.
    """
    if named:
        wanted, where = list(named), "--study"
    elif os.environ.get("TRIALGUARD_STUDY_ID"):
        wanted, where = os.environ["TRIALGUARD_STUDY_ID"].split(","), "TRIALGUARD_STUDY_ID"
    else:
        wanted, where = installed(), "installed protocol packages"
    chosen: list[str] = []
    for study in (s.strip() for s in wanted):
        if not TOPIC_NAME_PART.fullmatch(study):
            raise ConfigurationError(f"{where} {study[:60]!r}: a topic name part is 1-100 of A-Z a-z 0-9 . _ -")
        if study not in chosen:
            chosen.append(study)
    if not chosen:
        raise ConfigurationError(f"no study to serve ({where} names none)")
    return chosen


def named_studies(named: Sequence[str] | None) -> bool:
    """Whether the operator named the studies (``--study`` or TRIALGUARD_STUDY_ID), rather than
    leaving them to what is installed."""
    return bool(named) or bool(os.environ.get("TRIALGUARD_STUDY_ID"))
