"""What ``trialguard protocol list|test|check|docs|diff`` do (their options: ``commands.py``). Offline.

Exit status: 0 all is well (packages load, scenarios pass, coverage complete, versions equal,
document written), 1 something failed (named on the output), 2 usage error or a scenario that
cannot be read.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from events.scenarios import Outcome, describe, run
from protocol.coverage import gaps
from protocol.diff import Change, diff
from protocol.kit import Kit, KitError, kit_of
from protocol.model import Protocol
from protocol.registry import installed, versions_for
from protocol.scenarios import ScenarioError
from protocol.versions import Version, VersionError


def _shown(path: str) -> str:
    """A path relative to the working directory when it is under it (shorter messages)."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return path


def _versions(study: str, name: str | None) -> list[Version]:
    history = versions_for(study)
    if name is None:
        return list(history.versions)
    history.version(name)  # VersionError naming the known ones
    return [v for v in history.versions if v.name == name]


def run_scenarios(versions: Sequence[Version], paths: Sequence[Path] | None = None) -> list[Outcome]:
    """Every scenario of each version's package (or of ``paths``) that applies to it, run under it.

    Raises:
        ScenarioError: a scenario that cannot be read or built.
        KitError: a package without a kit.
    """
    outcomes = []
    for version in versions:
        kit = kit_of(version.protocol)
        for scenario in kit.scenarios(list(paths) if paths else None):
            if scenario.applies_to(version.name):
                outcomes.append(run(scenario, version.protocol, kit.vocabulary))
    return outcomes


def print_outcomes(outcomes: Sequence[Outcome], out: TextIO) -> None:
    """Each failure as expected versus got with the events that mattered, then the counts."""
    for o in outcomes:
        if o.passed:
            continue
        s = o.scenario
        print(f"FAIL {_shown(s.path)}:{s.line} {s.feature}: {s.name} (v{o.version})", file=out)
        for f in o.failures:
            print(f"  line {f.line}: Then {f.step}\n    expected: {f.expected}\n    got:      {f.got}", file=out)
        if o.mattered:
            print("  events that mattered:", file=out)
            for e in o.mattered:
                print(f"    {describe(e)}", file=out)
    failed = sum(1 for o in outcomes if not o.passed)
    print(f"{len(outcomes) - failed} passed, {failed} failed", file=out)


def _test(args: argparse.Namespace) -> int:
    try:
        outcomes = run_scenarios(_versions(args.study, args.version), args.paths)
    except (ScenarioError, KitError, VersionError) as e:
        print(f"trialguard protocol test: {e}", file=sys.stderr)
        return 2
    print_outcomes(outcomes, sys.stdout)
    if args.junit_xml is not None:
        from services.protocol_kit.junit import write_junit

        write_junit(outcomes, args.junit_xml)
    return 1 if any(not o.passed for o in outcomes) else 0


def coverage_gaps(versions: Sequence[Version], kit_for: Any = kit_of) -> list[str]:
    """Every gap of every version (see ``protocol.coverage``)."""
    found: list[str] = []
    for version in versions:
        kit: Kit = kit_for(version.protocol)
        found += gaps(version.protocol, kit.scenarios(), kit.criteria)
    return found


def _check(args: argparse.Namespace) -> int:
    try:
        versions = _versions(args.study, None)
        found = coverage_gaps(versions)
    except (ScenarioError, KitError) as e:
        print(f"trialguard protocol check: {e}", file=sys.stderr)
        return 2
    for gap in found:
        print(gap)
    rules = sum(len(v.protocol.rules) for v in versions)
    print(f"{args.study}: {len(versions)} version(s), {rules} rules: {len(found) or 'no'} gap(s)")
    return 1 if found else 0


def _docs(args: argparse.Namespace) -> int:
    from services.files import atomic_text
    from services.protocol_kit.spec import render_html, render_markdown, spec_context

    try:
        (version,) = _versions(args.study, args.version or versions_for(args.study).versions[-1].name)
        outcomes = run_scenarios([version])
    except (ScenarioError, KitError, VersionError) as e:
        print(f"trialguard protocol docs: {e}", file=sys.stderr)
        return 2
    context = spec_context(version, kit_of(version.protocol).criteria, outcomes)
    today = dt.datetime.now(dt.UTC).date()
    text = render_html(context, today) if args.format == "html" else render_markdown(context, today)
    with atomic_text(args.out) as out:
        out.write(text)
    print(f"wrote {args.out}: {len(context['rules'])} rules, {context['scenarios_run']} scenarios "
          f"({context['scenarios_failed']} failing)", file=sys.stderr)  # fmt: skip
    return 0


def report_diff(before: Protocol, after: Protocol, fmt: str, out: TextIO) -> int:
    """Print what changes from ``before`` to ``after``; 0 when they are equal, 1 when not."""
    changes: list[Change] = diff(before, after)
    if fmt == "json":
        document = {"before": before.version, "after": after.version, "changes": [c.as_json() for c in changes]}
        print(json.dumps(document, indent=2, sort_keys=True, default=str), file=out)
    else:
        for change in changes:
            print(change, file=out)
        print(f"{before.study_id} v{before.version} -> v{after.version}: {len(changes) or 'no'} change(s)", file=out)
    return 1 if changes else 0


def _diff(args: argparse.Namespace) -> int:
    history = versions_for(args.study)
    try:
        before, after = history.version(args.before), history.version(args.after)
    except VersionError as e:
        print(f"trialguard protocol diff: {e}", file=sys.stderr)
        return 2
    return report_diff(before, after, args.format, sys.stdout)


def _list(args: argparse.Namespace) -> int:
    from services.protocol_kit.listing import print_listing

    return print_listing(installed(), args.format, sys.stdout)
