"""``trialguard audit replay`` and ``trialguard audit diff``: recompute findings, compare them.

The shell around :mod:`services.audit.recompute` and :mod:`services.audit.diff`: options, the
broker, files, standard streams and exit statuses.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import sys
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any, TextIO

from aiokafka.errors import KafkaError

from events.jsonl import write_line
from protocol.registry import ProtocolLookupError
from services.audit.diff import EXIT_USAGE, VERSION_FIELDS, compare, render_table, to_json
from services.audit.diff import finding_id as diff_finding_id
from services.audit.recompute import (
    Recomputed,
    as_of_ms,
    new_replay,
    parse_as_of,
    records_from_file,
    records_from_topic,
)
from services.files import atomic_output
from services.kafka import KafkaSettings, add_kafka_args, partition_ids, read_to_end, settings_from_args
from services.ledger.export_format import ExportFormatError

VERSION_NAME = re.compile(r"[A-Za-z0-9._-]{1,60}")


class UsageError(Exception):
    """The command cannot run as asked (exit status 2)."""


def shadow_deviations_topic(settings: KafkaSettings, version: str) -> str:
    """The topic a shadow rules service judging under candidate ``version`` writes its findings to."""
    return replace(settings, shadow=version).topics.deviations


def _as_of(text: str) -> dt.datetime:
    try:
        return parse_as_of(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time with an offset: {e}") from None


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--events",
        metavar="FILE",
        help="read the events from FILE (an audit export, or contract-v1 JSON lines) instead of the topic; "
        "no broker is needed for audit replay",
    )
    parser.add_argument(
        "--as-of",
        type=_as_of,
        metavar="TIME",
        help="only records TrialGuard had received by TIME (ISO 8601 with an offset): Kafka record timestamp <= "
        "TIME; needs the topic or an export (plain JSON lines carry no broker time)",
    )
    add_kafka_args(parser)


async def recompute_from(args: argparse.Namespace) -> tuple[Recomputed, int | None]:
    """Recompute the findings the options ask for: from ``--events`` or the topic, ``--as-of``.

    Raises:
        UsageError: the input cannot be read as asked.
    """
    settings = settings_from_args(args)
    replay = new_replay(settings.study_id)
    cutoff = None if args.as_of is None else as_of_ms(args.as_of)
    if args.events is None:
        source = settings.topics.participant_events
        if not await partition_ids(settings, source):
            raise UsageError(f"topic {source} does not exist")
        out = Recomputed(source, replay)
        async for record in records_from_topic(settings):
            out.add(record, cutoff)
        return out.finish(), cutoff
    return _recompute_file(Path(args.events), settings.study_id, replay, cutoff), cutoff


def _recompute_file(path: Path, study_id: str, replay: Any, cutoff: int | None) -> Recomputed:
    if not path.is_file():
        raise UsageError(f"--events {path}: no such file")
    out = Recomputed(str(path), replay)
    try:
        for record in records_from_file(path, study_id):
            if cutoff is not None and record.timestamp_ms is None:
                raise UsageError(f"--as-of needs record timestamps: {path} is plain JSON lines, not an audit export")
            out.add(record, cutoff)
    except ExportFormatError as e:
        raise UsageError(f"--events {path}: {e}") from None
    except OSError as e:
        raise UsageError(f"--events {path}: {e.strerror or e}") from None
    return out.finish()


def summary(done: Recomputed, as_of: dt.datetime | None) -> str:
    """The end-of-run summary on stderr: what was read, left out, rejected and raised."""
    history = done.replay.history
    versions = ", ".join(f"v{v.name}" for v in history.versions)
    head = f"audit replay of {done.source} under {history.study_id} protocol {versions}"
    rows = [
        ("records read", done.records),
        *([("received after --as-of", done.after_as_of)] if as_of is not None else []),
        ("events processed", done.replay.processed),
        ("duplicates", done.replay.duplicates),
        ("dead-lettered (rejected)", done.rejected),
        ("findings", len(done.findings)),
        *((f"  {rule}", n) for rule, n in sorted(done.replay.findings_by_rule.items())),
    ]
    width = max(len(label) for label, _ in rows)
    lines = [head + ("" if as_of is None else f", as of {as_of.isoformat()}")]
    lines += [f"  {label:<{width}}  {count:>7}" for label, count in rows]
    if done.timestamp_types:
        kinds = ", ".join(f"{kind} {n}" for kind, n in sorted(done.timestamp_types.items()))
        lines.append(f"  record timestamps: {kinds}")
        if as_of is not None and done.timestamp_types.get("CreateTime"):
            lines.append(
                "  note: CreateTime records carry the producer's clock, not the broker's: --as-of trusts producers"
            )
    return "\n".join(lines) + "\n"


async def _replay(args: argparse.Namespace) -> int:
    """``audit replay``: the recomputed findings as JSON lines (stdout or --out), a summary on stderr."""
    try:
        if args.out is not None and not Path(args.out).parent.is_dir():
            raise UsageError(f"--out {args.out}: folder {Path(args.out).parent} does not exist")
        done, _ = await recompute_from(args)
    except (UsageError, ProtocolLookupError) as e:
        return _fail(sys.stderr, "replay", str(e.args[0]))
    except KafkaError as e:
        return _fail(sys.stderr, "replay", f"broker {args.bootstrap_servers}: {e}")
    if args.out is None:
        for finding in done.findings:
            write_line(sys.stdout.buffer, finding)
        sys.stdout.buffer.flush()
    else:
        with atomic_output(Path(args.out)) as f:
            for finding in done.findings:
                write_line(f, finding)
    sys.stderr.write(summary(done, args.as_of))
    return 0


async def _committed(settings: KafkaSettings, topic: str) -> list[object]:
    """The committed records of a findings topic, decoded; unreadable ones as a short description."""
    if not await partition_ids(settings, topic):
        raise UsageError(f"topic {topic} does not exist")
    out: list[object] = []
    async for r in read_to_end(settings, topic):
        try:
            out.append(json.loads(r.value or b""))
        except ValueError:
            out.append(f"{topic}:{r.partition}@{r.offset}: not JSON")
    return out


def in_scope(findings: Iterable[object], late_event_ids: set[str]) -> list[object]:
    """The findings that were due by --as-of: none of their triggers was received after it.

    A finding is published after its trigger is consumed, so the finding's own record time says
    when the service got round to it, not what it knew; filtering by trigger asks "was the right
    thing raised for what had been received". A finding whose triggers are unknown stays in, so
    a forged one is still reported.
    """
    out = []
    for obj in findings:
        triggers = obj.get("trigger_event_ids") if isinstance(obj, dict) else None
        if isinstance(triggers, list) and any(str(t) in late_event_ids for t in triggers):
            continue
        if isinstance(obj, dict) and str(obj.get("superseded_by_event_id")) in late_event_ids:
            continue  # a FindingSuperseded whose correction came after --as-of
        out.append(obj)
    return out


async def _diff(args: argparse.Namespace) -> int:
    """``audit diff``: recomputed vs committed findings (or committed vs a shadow version's)."""
    settings = settings_from_args(args)
    try:
        if args.shadow is not None and not VERSION_NAME.fullmatch(args.shadow):
            raise UsageError(f"--shadow {args.shadow[:60]!r}: a version is 1-60 of A-Z a-z 0-9 . _ -")
        late: set[str] = set()
        if args.shadow is None:
            done, _ = await recompute_from(args)
            late = done.late_event_ids
            expected: list[object] = list(done.finding_objects())
            expected_name = f"recomputed from {done.source}"
            ignore: frozenset[str] = frozenset()
            actual_topic = settings.topics.deviations
        else:
            if args.as_of is not None:
                late = (await recompute_from(args))[0].late_event_ids
            expected = await _committed(settings, settings.topics.deviations)
            expected_name = settings.topics.deviations
            ignore = VERSION_FIELDS
            actual_topic = shadow_deviations_topic(settings, args.shadow)
        actual = await _committed(settings, actual_topic)
    except (UsageError, ProtocolLookupError) as e:
        return _fail(sys.stderr, "diff", str(e.args[0]))
    except KafkaError as e:
        return _fail(sys.stderr, "diff", f"broker {args.bootstrap_servers}: {e}")
    if args.as_of is not None:
        expected, actual = in_scope(expected, late), in_scope(actual, late)
    # A shadow topic is a side that may hold anything: its records are checked, not trusted.
    expected_ids = [o for o in expected if isinstance(o, dict) and diff_finding_id(o) is not None]
    unreadable_expected = len(expected) - len(expected_ids)
    diff = compare(expected_ids, actual, expected_name=expected_name, actual_name=actual_topic, ignore=ignore)
    if args.format == "json":
        document = to_json(diff)
        document["unidentified_expected"] = unreadable_expected
        sys.stdout.write(json.dumps(document, sort_keys=True, default=str) + "\n")
    else:
        sys.stdout.write(render_table(diff))
        if unreadable_expected:
            sys.stdout.write(f"not findings (in {expected_name}): {unreadable_expected}\n")
    sys.stdout.flush()
    return 1 if unreadable_expected else diff.exit_code


def _fail(stderr: TextIO, command: str, message: str) -> int:
    stderr.write(f"trialguard audit {command}: {message}\n")
    return EXIT_USAGE


def add_commands(
    audit: argparse._SubParsersAction[argparse.ArgumentParser],
    export: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    """Register ``audit replay`` and ``audit diff`` (nothing under ``export``)."""
    del export
    replay = audit.add_parser(
        "replay",
        help="recompute the findings from participant-events (or an export) under the protocol",
        description="Recompute every finding from participant-events, read from offset 0 (read_committed, each "
        "partition in offset order: what the live rules service sees), or from --events FILE without a broker, "
        "through the live service's processing step. Findings go out as JSON lines (as trialguard replay "
        "writes them), a summary to stderr. Exit status: 0 done, 2 usage, input or broker error.",
    )
    _common(replay)
    replay.add_argument("--out", metavar="FILE", help="write the findings to FILE, complete or not at all")
    replay.set_defaults(run=_replay)

    diff = audit.add_parser(
        "diff",
        help="compare recomputed findings with the committed ones (or the committed with a shadow version's)",
        description="Compare the findings recomputed as audit replay does with those committed on the deviations "
        "topic: missing (recomputed, not committed), extra (committed, not recomputed), changed (same id, "
        "different content, with the fields that differ), per rule. With --as-of, committed findings triggered "
        "by an event received after TIME are left out. With --shadow V, compare the deviations topic with the "
        "one a shadow rules service under candidate version V writes (protocol_version and ruleset_fingerprint "
        "ignored). Exit status: 0 equal, 1 different, 2 usage, input or broker error.",
    )
    _common(diff)
    diff.add_argument("--shadow", metavar="V", help="compare the deviations topic with shadow version V's")
    diff.add_argument("--format", choices=["table", "json"], default="table", help="output (default %(default)s)")
    diff.set_defaults(run=_diff)
