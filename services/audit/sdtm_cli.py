"""``trialguard export sdtm-dv``: the deviations as SDTM DV and SUPPDV, the subjects as DM (SAS
XPORT v5, or CSV), and their define.xml-style metadata.

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
import datetime as dt
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
from services.audit.define import define_xml
from services.audit.sdtm import DvRow, SdtmDv, SuppRow, build, check_limits, columns
from services.audit.sdtm_dm import DmRow, build_dm
from services.audit.sdtm_spec import DM, DV, SUPPDV, Dataset
from services.audit.sdtm_study import sdtm_study
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
        help="write the protocol deviations as SDTM DV and SUPPDV, and DM (SAS XPORT v5 or CSV)",
        description="Write every protocol deviation (not safety alerts) as an SDTMIG 3.4 DV dataset, "
        "severity and review status as SUPPDV, every participant as DM, and define.xml-style metadata of "
        "the three. From the broker by default; with --events, offline from a "
        "JSON-lines event log or an audit export file (replayed). Exit status: 0 written, 1 written but "
        "some input records were skipped, 2 usage, Kafka or I/O error (nothing written).",
    )
    command.add_argument("--out", required=True, metavar="FILE", help="the DV dataset (dv.xpt)")
    command.add_argument(
        "--supp-out", metavar="FILE", help="the SUPPDV dataset (default: supp<name of --out> beside it)"
    )
    command.add_argument("--dm-out", metavar="FILE", help="the DM dataset (default: dm<suffix of --out> beside it)")
    command.add_argument("--define-out", metavar="FILE", help="the metadata (default: define.xml beside --out)")
    command.add_argument("--format", choices=["xpt", "csv"], default="xpt", help="default %(default)s")
    command.add_argument(
        "--events", metavar="FILE", help="offline: a contract-v1 JSON-lines log or an audit export file"
    )
    add_kafka_args(command)
    command.set_defaults(run=_run, sync=True)


def _run(args: argparse.Namespace) -> int:
    paths = {"dm_out": args.dm_out, "define_out": args.define_out}
    return run(args.out, args.supp_out, args.format, args.events, settings_from_args(args), stderr=sys.stderr, **paths)


def run(
    out: str,
    supp_out: str | None,
    fmt: str,
    events: str | None,
    settings: KafkaSettings,
    *,
    stderr: TextIO,
    dm_out: str | None = None,
    define_out: str | None = None,
    now: dt.datetime | None = None,
) -> int:
    """Run ``trialguard export sdtm-dv``; returns the exit status.

    ``now`` is the define.xml creation time (default: the clock).
    """
    protocol = protocol_for(settings.study_id)
    try:
        study = sdtm_study(protocol.study_id)
    except KeyError as e:
        return _fail(stderr, str(e.args[0]))
    dv_path = Path(out)
    paths = Paths(
        dv_path,
        Path(supp_out) if supp_out else dv_path.with_name("supp" + dv_path.name),
        Path(dm_out) if dm_out else dv_path.with_name("dm" + dv_path.suffix),
        Path(define_out) if define_out else dv_path.with_name("define.xml"),
    )
    for path in paths.all():
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
    result = build(inputs.findings, inputs.events, protocol, inputs.reviews, study)
    dm = build_dm(inputs.events, protocol, study)
    try:
        tables = write(result, dm, paths, fmt)
        metadata = define_xml(study, protocol.title, tables, now or dt.datetime.now(dt.UTC))
        with atomic_path(paths.define) as temporary:
            temporary.write_bytes(metadata)
    except (OSError, ValueError) as e:
        return _fail(stderr, str(e))
    stderr.write(
        f"wrote {len(result.dv)} deviations to {paths.dv}, {len(result.suppdv)} qualifiers to {paths.supp}, "
        f"{len(dm)} subjects to {paths.dm} and their metadata to {paths.define}\n"
    )
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


@dataclass(frozen=True)
class Paths:
    """Where the datasets and the metadata go."""

    dv: Path
    supp: Path
    dm: Path
    define: Path

    def all(self) -> tuple[Path, ...]:
        """Every output path."""
        return (self.dv, self.supp, self.dm, self.define)


def frame(table: dict[str, list[Any]], dataset: Dataset) -> Any:
    """A pandas DataFrame of the columns, each typed as its variable is, even when there are no rows."""
    # Loaded here, untyped: pyreadstat writes DataFrames only, and only this command needs one
    # (pandas costs a noticeable start-up time to every other command).
    pd = importlib.import_module("pandas")
    df = pd.DataFrame(table)
    for variable in dataset.variables:
        df[variable.name] = df[variable.name].astype("float64" if variable.numeric else "object")
    return df


def write(result: SdtmDv, dm: list[DmRow], paths: Paths, fmt: str) -> list[tuple[Dataset, dict[str, list[Any]], str]]:
    """Write the three datasets, each complete or not at all.

    Returns:
        Each dataset with its columns as written and its file name (for the metadata).

    Raises:
        ValueError: a name, label or value breaks the XPT v5 limits (``build`` keeps them; this
            is the last guard before a file an agency would refuse).
        OSError: a file cannot be written.
    """
    written: list[tuple[Dataset, dict[str, list[Any]], str]] = []
    rows_of: tuple[tuple[Dataset, list[Any], type[Any], Path], ...] = (
        (DM, dm, DmRow, paths.dm),
        (DV, result.dv, DvRow, paths.dv),
        (SUPPDV, result.suppdv, SuppRow, paths.supp),
    )
    for dataset, rows, kind, path in rows_of:
        table = columns(rows, kind)
        if problems := check_limits(table, dataset.labels | {"(dataset)": dataset.label}):
            raise ValueError(f"{dataset.name}: " + "; ".join(problems))
        df = frame(table, dataset)
        written.append((dataset, table, path.name))
        if fmt == "csv":
            with atomic_text(path) as f:
                df.to_csv(f, index=False, lineterminator="\n")
            continue
        pyreadstat = importlib.import_module("pyreadstat")
        # pyreadstat writes to a path: write beside the target, then rename (atomic on one file system).
        with atomic_path(path) as temporary:
            pyreadstat.write_xport(
                df,
                str(temporary),
                file_format_version=5,  # FDA takes v5; pyreadstat writes v8 unless told
                table_name=dataset.name,
                file_label=dataset.label,  # the dataset label: blank unless given
                column_labels=[dataset.labels[c] for c in df.columns],
            )
    return written
