"""``trialguard audit …`` and ``trialguard export …``: each audit module registers its own commands."""

from __future__ import annotations

import argparse
import importlib

MODULES: tuple[str, ...] = (
    "services.audit.keygen",
    "services.audit.export",
    "services.audit.verify",
    "services.audit.sdtm_cli",
    "services.audit.replay_cli",
    "services.audit.report_cli",
)
"""Modules with ``add_commands(audit, export)``; each registers its subcommands on the two groups."""


def add_audit_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the ``audit`` and ``export`` command groups on ``trialguard``."""
    audit = commands.add_parser("audit", help="audit: replay, diff, verify, report").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    export = commands.add_parser("export", help="export the log or the findings for auditors").add_subparsers(
        dest="what", required=True, metavar="WHAT"
    )
    for name in MODULES:
        importlib.import_module(name).add_commands(audit, export)
