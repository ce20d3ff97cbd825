"""``trialguard export sdtm-dv``: the deviations as SDTM DV and SUPPDV (SAS XPORT v5, or CSV).

Two sources, the same rows (see ``services.audit.sdtm`` for every mapping choice):

* the broker (default): the committed findings on the deviations topic, the participant events
  (for EPOCH) and the dashboard's reviews (for the review status), each read to its end;
* ``--events FILE``, offline: contract-v1 JSON lines or an audit export file (its
  participant-events records, and its finding-reviews records when it has some); the findings
  come from replaying the events with the same step as the live service.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from aiokafka.errors import KafkaError
from pydantic import ValidationError

from contracts import (
    ContractError,
    DeviationRaised,
    FindingReviewed,
    FindingSuperseded,
    Output,
    ParticipantEvent,
    parse_event,
)
from events.replay import Replay
from protocol.registry import protocol_for
from services.audit.sdtm import DV_LABELS, SUPPDV_LABELS, DvRow, SdtmDv, SuppRow, build, check_limits, columns
from services.files import atomic_path, atomic_text
from services.kafka import KafkaSettings, add_kafka_args, read_to_end, settings_from_args
from services.ledger.export_format import is_export

EXIT_OK, EXIT_REJECTED, EXIT_USAGE = 0, 1, 2
LISTED = 20
"""Rejected inputs reported one by one; the rest are counted."""


@dataclass
class Inputs:
    """What an export is built from, and the inputs it had to skip."""

    findings: list[Output] = field(default_factory=list)
    events: list[ParticipantEvent] = field(default_factory=list)
    reviews: list[FindingReviewed] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)


def add_commands(
    audit: argparse._SubParsersAction[argparse.ArgumentParser],
    export: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    """Register ``export sdtm-dv`` (this module adds nothing to ``audit``)."""

    command = export.add_parser(
        "sdtm-dv",
        help="write the protocol deviations as SDTM DV and SUPPDV (SAS XPORT v5 or CSV)",
        description="Write every protocol deviation (not safety alerts) as an SDTMIG 3.4 DV dataset, and "
        "severity and review status as SUPPDV. From the broker by default; with --events, offline from a "
        "JSON-lines event log or an audit export file (replayed). Exit status: 0 written, 1 written but "
        "some input records were skipped, 2 usage, Kafka or I/O error (nothing written).",
    )
    command.add_argument("--out", required=True, metavar="FILE", help="the DV dataset (dv.xpt)")
    command.add_argument(
        "--supp-out", metavar="FILE", help="the SUPPDV dataset (default: supp<name of --out> beside it)"
    )
    command.add_argument("--format", choices=["xpt", "csv"], default="xpt", help="default %(default)s")
    command.add_argument(
        "--events", metavar="FILE", help="offline: a contract-v1 JSON-lines log or an audit export file"
    )
    add_kafka_args(command)
    command.set_defaults(run=_run, sync=True)


def _run(args: argparse.Namespace) -> int:
    return run(args.out, args.supp_out, args.format, args.events, settings_from_args(args), stderr=sys.stderr)


def run(
    out: str, supp_out: str | None, fmt: str, events: str | None, settings: KafkaSettings, *, stderr: TextIO
) -> int:
    """Run ``trialguard export sdtm-dv``; returns the exit status."""
    protocol = protocol_for(settings.study_id)
    dv_path = Path(out)
    supp_path = Path(supp_out) if supp_out else dv_path.with_name("supp" + dv_path.name)
    for path in (dv_path, supp_path):
        if path.is_dir() or not path.parent.is_dir():
            return _fail(stderr, f"{path}: not a file in an existing folder")
    try:
        inputs = read_offline(Path(events), protocol.study_id) if events else asyncio.run(read_broker(settings))
    except (OSError, ValueError) as e:  # ValueError: ExportFormatError, a line that is not JSON
        return _fail(stderr, f"{events}: {e}")
    except KafkaError as e:
        return _fail(stderr, f"Kafka at {settings.bootstrap_servers}: {e}")
    for problem in inputs.rejected[:LISTED]:
        stderr.write(f"skipped: {problem}\n")
    if len(inputs.rejected) > LISTED:
        stderr.write(f"skipped: {len(inputs.rejected) - LISTED} more\n")
    result = build(inputs.findings, inputs.events, protocol, inputs.reviews)
    try:
        write(result, dv_path, supp_path, fmt)
    except (OSError, ValueError) as e:
        return _fail(stderr, str(e))
    stderr.write(f"wrote {len(result.dv)} deviations to {dv_path} and {len(result.suppdv)} qualifiers to {supp_path}\n")
    return EXIT_REJECTED if inputs.rejected else EXIT_OK


def _fail(stderr: TextIO, message: str) -> int:
    stderr.write(f"trialguard export sdtm-dv: {message}\n")
    return EXIT_USAGE


# --- inputs ----------------------------------------------------------------------------------


def read_offline(path: Path, study_id: str) -> Inputs:
    """Replay an event log (JSON lines or an audit export) into findings, events and reviews."""
    inputs = Inputs()
    replay = Replay(protocol_for(study_id))
    raw: Iterator[tuple[str, bytes]]
    raw = _export_records(path, study_id, inputs) if is_export(path) else _jsonl(path)
    for where, value in raw:
        try:
            event = parse_event(value)
            inputs.findings += replay.feed(event)
        except ContractError as e:
            inputs.rejected.append(f"{where}: {e}")
            continue
        except Exception as e:  # a bug in the core: the live service dead-letters it, so skip it alike
            inputs.rejected.append(f"{where}: protocol core raised {type(e).__name__}: {e}")
            continue
        inputs.events.append(event)
    return inputs


def _jsonl(path: Path) -> Iterator[tuple[str, bytes]]:
    with path.open("rb") as f:
        for number, line in enumerate(f, 1):
            if line.strip():
                yield f"{path}:{number}", line.rstrip(b"\r\n")


def _export_records(path: Path, study_id: str, inputs: Inputs) -> Iterator[tuple[str, bytes]]:
    """The export's participant events (yielded) and reviews (kept in ``inputs``), in file order."""
    from services.ledger.export_format import read_export  # late: only offline exports need it

    for record in read_export(path):
        where = f"{record.topic}[{record.partition}]@{record.offset}"
        if record.topic.endswith(f".{study_id}.participant-events"):
            yield where, record.value
        elif record.topic.endswith(f".{study_id}.finding-reviews"):
            _add_review(inputs, where, record.value)


def _add_review(inputs: Inputs, where: str, value: bytes | None) -> None:
    try:
        inputs.reviews.append(FindingReviewed.model_validate_json(value or b""))
    except ValidationError as e:
        inputs.rejected.append(f"{where}: not a FindingReviewed ({e.error_count()} errors)")


async def read_broker(settings: KafkaSettings) -> Inputs:
    """The committed findings, participant events and reviews of the study, each to its end."""
    inputs = Inputs()
    topics = settings.topics
    async for record in read_to_end(settings, topics.deviations):
        where = f"{record.topic}[{record.partition}]@{record.offset}"
        try:
            kind = json.loads(record.value or b"{}").get("event_type")
            if kind == "DeviationRaised":
                inputs.findings.append(DeviationRaised.model_validate_json(record.value or b""))
            elif kind == "FindingSuperseded":  # its deviation is left out of the export
                inputs.findings.append(FindingSuperseded.model_validate_json(record.value or b""))
        except (ValueError, AttributeError) as e:  # pydantic's ValidationError is a ValueError
            inputs.rejected.append(f"{where}: not a finding ({type(e).__name__})")
    async for record in read_to_end(settings, topics.participant_events):
        try:
            inputs.events.append(parse_event(record.value or b""))
        except ContractError:
            continue  # dead-lettered by the rules service: it raised no finding, it has no epoch
    with contextlib.suppress(KafkaError):  # no dashboard yet: no topic, every deviation is open
        async for record in read_to_end(settings, topics.finding_reviews):
            _add_review(inputs, f"{record.topic}[{record.partition}]@{record.offset}", record.value)
    return inputs


# --- outputs ---------------------------------------------------------------------------------


def frame(rows: list[DvRow] | list[SuppRow], kind: type[DvRow] | type[SuppRow]) -> Any:
    """A pandas DataFrame of the rows, character columns typed as text even when there are no rows."""
    # Loaded here, untyped: pyreadstat writes DataFrames only, and only this command needs one
    # (pandas costs a noticeable start-up time to every other command).
    pd = importlib.import_module("pandas")
    table: dict[str, Any] = columns(rows, kind)
    df = pd.DataFrame(table)
    for name in df.columns:
        df[name] = df[name].astype("int64" if name == "DVSEQ" else "object")
    return df


def write(result: SdtmDv, dv_path: Path, supp_path: Path, fmt: str) -> None:
    """Write both datasets, each complete or not at all.

    Raises:
        ValueError: a name, label or value breaks the XPT v5 limits (``build`` keeps them; this
            is the last guard before a file an agency would refuse).
        OSError: a file cannot be written.
    """
    for rows, kind, labels, name, path in (
        (result.dv, DvRow, DV_LABELS, "DV", dv_path),
        (result.suppdv, SuppRow, SUPPDV_LABELS, "SUPPDV", supp_path),
    ):
        df = frame(rows, kind)
        pyreadstat = importlib.import_module("pyreadstat")
        if problems := check_limits(columns(rows, kind), labels):
            raise ValueError(f"{name}: " + "; ".join(problems))
        if fmt == "csv":
            with atomic_text(path) as f:
                df.to_csv(f, index=False, lineterminator="\n")
            continue
        # pyreadstat writes to a path: write beside the target, then rename (atomic on one file system).
        with atomic_path(path) as temporary:
            pyreadstat.write_xport(
                df,
                str(temporary),
                file_format_version=5,  # FDA takes v5; pyreadstat writes v8 unless told
                table_name=name,
                column_labels=[labels[c] for c in df.columns],
            )
