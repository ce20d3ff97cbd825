"""``trialguard audit report --out report.html``: gathers what the report states, then renders it.

From the broker (default): the log is participant-events; the findings are the committed ones;
the diff recomputes them from the log; the chain is checked against the live checkpoints when
``--public-key`` is given; review statuses come from finding-reviews. Offline (``--events
EXPORT``): the log is the export; the findings are recomputed from it; the chain and its signed
checkpoints are verified when ``--public-key`` is given; no diff (there is nothing published to
compare with).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from aiokafka.errors import KafkaError

from contracts import AccessChanged, FindingReviewed, ReviewStatus, ReviewTransitionError, check_transition
from protocol.fingerprint import fingerprint
from protocol.registry import ProtocolLookupError, versions_for
from services.audit.diff import compare
from services.audit.live_check import verified_from_log
from services.audit.recompute import InputRecord, Recomputed, new_replay, records_from_file, records_from_topic
from services.audit.report import CheckResult, PartitionExtent, ReportInputs, VersionRow, render
from services.audit.verify import VerificationError, check_export, check_live
from services.files import atomic_text
from services.kafka import KafkaSettings, add_kafka_args, partition_ids, read_to_end, settings_from_args
from services.ledger.export_format import ExportFormatError, is_export
from services.ledger.keys import KeyFileError, load_public_key

NOT_CHECKED = CheckResult(None, "give --public-key to check the chain and its signed checkpoints")


def _versions(study_id: str) -> tuple[VersionRow, ...]:
    rows = []
    for version in versions_for(study_id).versions:
        sites = ", ".join(f"{site} from {day.isoformat()}" for site, day in version.at_sites) or "all sites"
        effective = version.effective.isoformat() if version.effective else "the start of the study"
        rows.append(VersionRow(version.name, effective, sites, fingerprint(version.protocol)))
    return tuple(rows)


def _extent(records: Iterable[InputRecord]) -> tuple[PartitionExtent, ...]:
    """Offsets, record counts and the first and last event times (compared as instants) per partition."""
    seen: dict[int, list[Any]] = {}
    for record in records:
        row = seen.setdefault(record.partition, [record.offset, record.offset, 0, None, None])
        row[1], row[2] = record.offset, row[2] + 1
        try:
            occurred = dt.datetime.fromisoformat(str(json.loads(record.value)["occurred_at"]))
            occurred.astimezone(dt.UTC)
        except (ValueError, TypeError, KeyError, AttributeError):
            continue  # a record the service dead-letters has no event time to count
        if occurred.tzinfo is None:
            continue
        row[3] = occurred if row[3] is None or occurred < row[3] else row[3]
        row[4] = occurred if row[4] is None or occurred > row[4] else row[4]
    return tuple(
        PartitionExtent(p, first, last, n, _time(earliest), _time(latest))
        for p, (first, last, n, earliest, latest) in sorted(seen.items())
    )


def _time(moment: dt.datetime | None) -> str:
    return "—" if moment is None else moment.isoformat()


def _statuses(reviews: Iterable[bytes]) -> dict[str, str]:
    """Each finding's review status: the fold of its reviews in log order (refused ones ignored)."""
    status: dict[str, ReviewStatus] = {}
    for value in reviews:
        try:
            review = FindingReviewed.model_validate_json(value)
        except ValueError:
            continue
        key = str(review.finding_id)
        try:
            status[key] = check_transition(status.get(key, ReviewStatus.OPEN), review.action)
        except ReviewTransitionError:
            continue
    return {key: value.value for key, value in status.items()}


def _access_changes(values: Iterable[bytes]) -> tuple[AccessChanged, ...]:
    """The access log's changes in log order; a record that breaks the contract is left out."""
    changes = []
    for value in values:
        try:
            changes.append(AccessChanged.model_validate_json(value))
        except ValueError:
            continue
    return tuple(changes)


async def _from_broker(settings: KafkaSettings, public_key: Path | None) -> ReportInputs:
    topics = settings.topics
    if not await partition_ids(settings, topics.participant_events):
        raise ValueError(f"topic {topics.participant_events} does not exist")
    records = [r async for r in records_from_topic(settings)]
    recomputed = Recomputed(topics.participant_events, new_replay(settings.study_id))
    for record in records:
        recomputed.add(record, None)
    committed = [json.loads(r.value or b"{}") async for r in read_to_end(settings, topics.deviations)]
    diff = compare(
        recomputed.finish().finding_objects(), committed, expected_name="recomputed", actual_name=topics.deviations
    )
    details = [f"changed: {c.rule_id} {c.participant_id}: {', '.join(c.fields)}" for c in diff.changed[:10]]
    details += [f"missing: {o.get('rule_id')} {o.get('participant_id')}" for o in diff.missing[:10]]
    details += [f"extra: {o.get('rule_id')} {o.get('participant_id')}" for o in diff.extra[:10]]
    diff_result = CheckResult(
        diff.exit_code == 0,
        f"{diff.same} equal, {len(diff.missing)} missing, {len(diff.extra)} extra, {len(diff.changed)} changed",
        tuple(details),
    )
    verification = NOT_CHECKED
    if public_key is not None:
        verified = await verified_from_log(settings)
        compared, problems = await check_live(settings, topics.audit_checkpoints, verified, load_public_key(public_key))
        verification = CheckResult(
            not problems and compared > 0,
            f"{compared} live checkpoints compared with the chain of the log as it is now",
            tuple(problems),
        )
    reviews = [r.value or b"" async for r in read_to_end(settings, topics.finding_reviews)]
    has_access_log = bool(await partition_ids(settings, topics.access_log))
    access = [r.value or b"" async for r in read_to_end(settings, topics.access_log)]
    has_reviews = bool(await partition_ids(settings, topics.finding_reviews))
    return ReportInputs(
        study_id=settings.study_id,
        generated_at=dt.datetime.now(dt.UTC),
        source=f"broker {settings.bootstrap_servers}",
        versions=_versions(settings.study_id),
        extent=_extent(records),
        verification=verification,
        diff=diff_result,
        findings=tuple(committed),
        review_status=_statuses(reviews) if has_reviews else None,
        access_changes=_access_changes(access) if has_access_log else None,
    )


def _from_export(path: Path, study_id: str, public_key: Path | None) -> ReportInputs:
    records = list(records_from_file(path, study_id))
    recomputed = Recomputed(str(path), new_replay(study_id))
    for record in records:
        recomputed.add(record, None)
    verification = NOT_CHECKED
    if public_key is not None:
        try:
            verified = check_export(path, load_public_key(public_key))
            verification = CheckResult(
                True,
                f"{verified.records:,} records in {verified.partitions} partitions (format {verified.format}); "
                f"chains and signed {'manifest' if verified.format == 2 else 'checkpoints'} hold",
            )
        except VerificationError as e:
            verification = CheckResult(False, f"{path}:{e.line}: {e.reason}")
    return ReportInputs(
        study_id=study_id,
        generated_at=dt.datetime.now(dt.UTC),
        source=f"export {path.name}",
        versions=_versions(study_id),
        extent=_extent(records),
        verification=verification,
        diff=CheckResult(None, "not checked: an export has no published findings to compare with"),
        findings=tuple(recomputed.finish().finding_objects()),
    )


async def _report(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    key = None if args.public_key is None else Path(args.public_key)
    try:
        if args.events is not None:
            path = Path(args.events)
            if not is_export(path):
                raise ValueError(f"{path} is not an audit export (make one with `trialguard export events`)")
            inputs = _from_export(path, settings.study_id, key)
        else:
            inputs = await _from_broker(settings, key)
        html = render(inputs)
        with atomic_text(Path(args.out)) as out:
            out.write(html)
    except (ValueError, KeyFileError, ExportFormatError, ProtocolLookupError, OSError) as e:
        print(f"trialguard audit report: {e}", file=sys.stderr)
        return 2
    except KafkaError as e:
        print(f"trialguard audit report: broker {settings.bootstrap_servers}: {type(e).__name__}", file=sys.stderr)
        return 2
    failed = inputs.verification.passed is False or inputs.diff.passed is False
    print(
        f"wrote {args.out}: {len(inputs.findings)} findings; chain: {inputs.verification.summary}; "
        f"diff: {inputs.diff.summary}"
    )
    return 1 if failed else 0


def add_commands(audit: argparse._SubParsersAction[Any], export: argparse._SubParsersAction[Any]) -> None:
    """Register ``trialguard audit report``."""
    del export
    report = audit.add_parser(
        "report",
        help="write the audit report: one self-contained HTML file",
        description="Write the audit report (versions and fingerprints, the log's extent, the chain verification, "
        "the diff, findings by rule, category, severity and site, a chart, important deviations with their review "
        "status, the access log of users, tokens and sources). Exit status: 0 written and every check passed, "
        "1 written but a check failed, 2 not written.",
    )
    report.add_argument("--out", required=True, metavar="FILE", help="the HTML file to write (atomically)")
    report.add_argument("--events", metavar="EXPORT", help="report on an audit export instead of the broker")
    report.add_argument("--public-key", metavar="KEYFILE.pub", help="verify the hash chain and its checkpoints")
    add_kafka_args(report)
    report.set_defaults(run=_report)
