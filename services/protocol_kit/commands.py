"""``trialguard protocol list|test|check|docs|diff``: the protocol author's commands and their options.

Only the options are built here: what the commands do (``cli.py``) brings the Gherkin parser, the
coverage check and Jinja2, which ``trialguard replay`` (built by the same offline parser) should
not pay for in memory or start time.

Exit status: 0 all is well (packages load, scenarios pass, coverage complete, versions equal,
document written), 1 something failed (named on the output), 2 usage error or a scenario that
cannot be read.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from services.defaults import DEFAULT_STUDY


def _later(action: str) -> Callable[[argparse.Namespace], int]:
    """The handler of ``action``, imported when the command runs."""

    def run(args: argparse.Namespace) -> int:
        from services.protocol_kit import cli

        handler: Callable[[argparse.Namespace], int] = getattr(cli, f"_{action}")
        return handler(args)

    return run


def add_protocol_commands(protocol: argparse.ArgumentParser) -> None:
    """The subcommands of ``trialguard protocol``."""
    actions = protocol.add_subparsers(dest="action", required=True, metavar="ACTION")
    default_study = os.environ.get("TRIALGUARD_STUDY_ID", DEFAULT_STUDY)
    study: dict[str, Any] = {
        "default": default_study,
        "help": "the study (env TRIALGUARD_STUDY_ID; default %(default)s)",
    }

    listing = actions.add_parser(
        "list",
        help="the installed protocol packages: each study's versions, effective dates and fingerprints",
        description="List the studies of the installed protocol packages (entry point group trialguard.protocols): "
        "title, each version with the date it takes effect (and per-site dates) and its ruleset fingerprint. A "
        "package that fails to load is listed with the reason; the others are still listed. Exit 0 all load, 1 "
        "one fails to load or none is installed.",
    )
    listing.add_argument("--format", choices=["text", "json"], default="text")
    listing.set_defaults(run=_later("list"), sync=True)

    test = actions.add_parser(
        "test",
        help="run the protocol package's scenarios (or the given .feature files/folders) through the processing step",
        description="Run Gherkin scenarios under every version of the study they apply to (or --version), through "
        "the same pure step as replay and the live service. Each failure prints expected versus got and the events "
        "that mattered. Exit 0 all pass, 1 some fail, 2 a scenario cannot be read.",
    )
    test.add_argument(
        "paths", nargs="*", type=Path, metavar="PATH", help="feature files or folders (default: the package's)"
    )
    test.add_argument("--study", **study)
    test.add_argument("--version", help="only this protocol version")
    test.add_argument("--junit-xml", type=Path, metavar="FILE", help="also write the results as JUnit XML")
    test.set_defaults(run=_later("test"), sync=True)

    check = actions.add_parser(
        "check",
        help="fail unless every rule of every version has a raising and a boundary scenario, every parameter a "
        "source or ASSUMPTION, and every registry criterion is encoded or listed as not encoded with its reason",
    )
    check.add_argument("--study", **study)
    check.set_defaults(run=_later("check"), sync=True)

    docs = actions.add_parser("docs", help="write the edit-check specification (HTML with print CSS, or Markdown)")
    docs.add_argument("--study", **study)
    docs.add_argument("--version", help="the protocol version (default: the current one)")
    docs.add_argument("--out", type=Path, required=True, metavar="FILE")
    docs.add_argument("--format", choices=["html", "markdown"], default="html")
    docs.set_defaults(run=_later("docs"), sync=True)

    versions = actions.add_parser(
        "diff", help="what an amendment changes between two versions (exit 0 equal, 1 different)"
    )
    versions.add_argument("--study", **study)
    versions.add_argument("before", metavar="A", help="the earlier version, e.g. 1.0")
    versions.add_argument("after", metavar="B", help="the later version")
    versions.add_argument("--format", choices=["text", "json"], default="text")
    versions.set_defaults(run=_later("diff"), sync=True)
