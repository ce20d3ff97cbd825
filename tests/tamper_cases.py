"""The tamper cases, each run through ``trialguard audit verify``'s checks and through the
independent verifier. ``.venv/bin/python -m tests.tamper_cases`` prints the table of answers."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from services.audit.live_check import compare_checkpoints
from services.audit.verify import VerificationError, check_export
from services.ledger.chain_v2 import checkpoint_message
from services.ledger.export_v2 import CheckpointV2, checkpoint_line, parse_v2
from tests import independent_verifier as iv
from tests.tampering import (
    CHECKPOINTS_TOPIC,
    FORMAT1_FIXTURE,
    KEY,
    OTHER_KEY,
    Scenario,
    data,
    drop_partition,
    dumps,
    edit,
    entry,
    export_of,
    format1_checkpoints,
    manifest_edit,
    rechain,
    record_numbers,
    resign_under_original_id,
    rollback_to_checkpoint,
    scenario,
    value_byte,
)

Lines = Callable[[list[str]], list[str]]


@dataclass(frozen=True)
class Case:
    """One attempt: the file it gives the verifiers, whether they compare live checkpoints, and
    whether it must be accepted.

    Attributes:
        name: what was done.
        make: the export's bytes, from the scenario.
        live: the live checkpoints to compare with (None: offline verification).
        as_of: the as-of checkpoint offset given.
        accept: the expected answer.
    """

    name: str
    make: Callable[[Scenario], bytes]
    live: Callable[[Scenario], list[tuple[int, bytes]]] | None = None
    as_of: Callable[[Scenario], int] | None = None
    accept: bool = False


def lines(change: Lines) -> Callable[[Scenario], bytes]:
    return lambda s: data(change(list(s.lines)))


def all_checkpoints(s: Scenario) -> list[tuple[int, bytes]]:
    return s.checkpoints


def checkpoint_edit(field: str, value: object) -> Callable[[Scenario], list[tuple[int, bytes]]]:
    """The live checkpoints with one field of the first one changed (its signature left as it was)."""

    def apply(s: Scenario) -> list[tuple[int, bytes]]:
        offset, first = s.checkpoints[0]
        obj = json.loads(first)
        obj[field] = value
        return [(offset, dumps(obj).encode()), *s.checkpoints[1:]]

    return apply


def checkpoint_by_other_key(s: Scenario) -> list[tuple[int, bytes]]:
    offset, first = s.checkpoints[0]
    line = parse_v2(first.decode(), offset)
    assert isinstance(line, CheckpointV2)
    forged = CheckpointV2(
        line.topic,
        line.position,
        line.key_id,
        OTHER_KEY.sign(checkpoint_message(line.topic, line.position, line.key_id)),
    )
    return [(offset, checkpoint_line(forged).encode()), *s.checkpoints[1:]]


def swap(a: int, b: int) -> Lines:
    def apply(ls: list[str]) -> list[str]:
        ls[a], ls[b] = ls[b], ls[a]
        return ls

    return apply


def record_edit_rechained(update_manifest: bool) -> Lines:
    def apply(ls: list[str]) -> list[str]:
        out = rechain(edit(ls, 3, value_byte))
        if update_manifest:
            head = json.loads(out[record_numbers(out, 0)[-1]])["chain"]
            out = edit(out, len(out) - 1, entry(0, "head", lambda _: head))
        return out

    return apply


def inserted_rechained(ls: list[str]) -> list[str]:
    """A forged record appended to partition 0 (the next offset), every chain value recomputed."""
    last = record_numbers(ls, 0)[-1]
    forged = edit(ls, last, lambda r: r.update(offset=r["offset"] + 1))[last]
    return rechain([*ls[: last + 1], forged, *ls[last + 1 :]])


def tombstone_to_empty(ls: list[str]) -> list[str]:
    last = record_numbers(ls, 2)[-1]
    return rechain(edit(ls, last, lambda r: r.update(value="")))


def _v1_checkpoint(line: str, partition: int) -> bool:
    obj = json.loads(line)
    return bool(obj["kind"] == "checkpoint" and obj["partition"] == partition)


def _drop_v1_partition(ls: list[str]) -> list[str]:
    return [line for line in ls if json.loads(line)["partition"] != 1]


ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def _padding_bits(record: dict[str, str]) -> None:
    """Set an unused bit of the key's last base64 character: the same bytes, another spelling."""
    key = record["key"]
    assert key.endswith("==")  # one byte in the last group: its character has four unused bits
    record["key"] = key[:-3] + ALPHABET[ALPHABET.index(key[-3]) ^ 1] + "=="


def _no_headers(record: dict[str, object]) -> None:
    record["headers"] = []


def fixture(change: Lines = lambda ls: ls) -> Callable[[Scenario], bytes]:
    return lambda s: data(change(FORMAT1_FIXTURE.read_text(encoding="utf-8").splitlines()))


CASES: list[Case] = [
    Case("untouched export", lines(lambda ls: ls), accept=True),
    Case("untouched export, compared with the live checkpoints", lines(lambda ls: ls), all_checkpoints, accept=True),
    Case(
        "older export, --as-of-checkpoint its last checkpoint (later ones reported beyond)",
        lambda s: data(s.older),
        all_checkpoints,
        lambda s: s.older_as_of,
        accept=True,
    ),
    Case("format 1 export (old fixture)", fixture(), accept=True),
    Case("changed byte in a record's value", lines(lambda ls: edit(ls, 3, value_byte))),
    Case(
        "changed byte in the JSON text (timestamp digit)",
        lines(lambda ls: [*ls[:2], ls[2].replace('"timestamp":1', '"timestamp":2', 1), *ls[3:]]),
    ),
    Case("removed record line", lines(lambda ls: ls[:4] + ls[5:])),
    Case("two record lines swapped", lines(swap(2, 3))),
    Case(
        "record lines swapped across partitions",
        lines(lambda ls: swap(record_numbers(ls, 0)[-1], record_numbers(ls, 1)[0])(ls)),
    ),
    Case("record line inserted (a copy)", lines(lambda ls: [*ls[:4], ls[3], *ls[4:]])),
    Case("record line inserted, chain recomputed", lines(inserted_rechained)),
    Case("forged manifest count", lines(manifest_edit(entry(0, "count", lambda c: c + 1)))),
    Case("forged manifest head", lines(manifest_edit(entry(1, "head", lambda _: "0" * 64)))),
    Case("forged live checkpoint head", lines(lambda ls: ls), checkpoint_edit("head", "0" * 64)),
    Case("forged live checkpoint count", lines(lambda ls: ls), checkpoint_edit("count", 2)),
    Case(
        "live checkpoint re-signed with another key under the original key id",
        lines(lambda ls: ls),
        checkpoint_by_other_key,
    ),
    Case("dropped partition (its records)", lines(drop_partition(1, manifest_too=False))),
    Case("dropped partition and its manifest entry", lines(drop_partition(1, manifest_too=True))),
    Case(
        "dropped record range (the end of a partition)",
        lines(lambda ls: [line for i, line in enumerate(ls) if i not in record_numbers(ls, 0)[-3:]]),
    ),
    Case(
        "dropped record range (the start of a partition), chain recomputed",
        lines(lambda ls: rechain([line for i, line in enumerate(ls) if i not in record_numbers(ls, 1)[:2]])),
    ),
    Case("rollback to an earlier live checkpoint (its position put in the manifest)", lines(rollback_to_checkpoint)),
    Case("rollback: an older export presented as current", lambda s: data(s.older), all_checkpoints),
    Case(
        "older export, --as-of-checkpoint after its end",
        lambda s: data(s.older),
        all_checkpoints,
        lambda s: s.checkpoints[-1][0],
    ),
    Case(
        "older export, --as-of-checkpoint naming no checkpoint",
        lambda s: data(s.older),
        all_checkpoints,
        lambda s: s.older_as_of + 1,
    ),
    Case("re-signed with another key under the original key id", lines(resign_under_original_id)),
    Case("whole export re-signed with another key", lambda s: data(_other_key_export())),
    Case("record edited, chain recomputed", lines(record_edit_rechained(update_manifest=False))),
    Case(
        "record edited, chain and manifest head recomputed (not re-signed)",
        lines(record_edit_rechained(update_manifest=True)),
    ),
    Case("null value made empty, chain recomputed", lines(tombstone_to_empty)),
    Case(
        "timestamp type changed (CreateTime for LogAppendTime)",
        lines(lambda ls: edit(ls, 2, lambda r: r.update(timestamp_type=0))),
    ),
    Case(
        "record header removed",
        lines(lambda ls: edit(ls, next(i for i, line in enumerate(ls) if '"origin"' in line), _no_headers)),
    ),
    Case("record header added", lines(lambda ls: edit(ls, 2, lambda r: r.update(headers=[["origin", "eA=="]])))),
    Case("extra field in a record", lines(lambda ls: edit(ls, 2, lambda r: r.update(note="ok")))),
    Case("extra field in the manifest", lines(manifest_edit(lambda m: m.update(note="ok")))),
    Case("a space added in a line", lines(lambda ls: [*ls[:2], ls[2].replace(",", ", ", 1), *ls[3:]])),
    Case(
        "non-canonical base64 (padding bits)",
        lines(lambda ls: edit(ls, 2, _padding_bits)),
    ),
    Case("truncated in the middle of a line", lambda s: data(s.lines)[:-40]),
    Case("truncated at a line end (records and manifest lost)", lines(lambda ls: ls[:20])),
    Case("missing manifest", lines(lambda ls: ls[:-1])),
    Case("a line after the manifest", lines(lambda ls: [*ls, ls[2]])),
    Case("format 2 header removed", lines(lambda ls: ls[1:])),
    Case("header says format 1", lines(lambda ls: ['{"format":1,"kind":"header"}', *ls[1:]])),
    Case("empty file", lambda s: b""),
    Case("format 1 export: changed byte", fixture(lambda ls: edit(ls, 1, value_byte))),
    Case(
        "format 1 export: a checkpoint removed",
        fixture(lambda ls: [line for line in ls if not _v1_checkpoint(line, 0)]),
    ),
    Case(
        "format 1 export: partition dropped (records and checkpoint), offline: format 1's known limit",
        fixture(_drop_v1_partition),
        accept=True,
    ),
    Case(
        "format 1 export: partition dropped, compared with its live checkpoints",
        fixture(_drop_v1_partition),
        lambda s: format1_checkpoints(),
    ),
    Case("format 1 export compared with its live checkpoints", fixture(), lambda s: format1_checkpoints(), accept=True),
]


def _other_key_export() -> list[str]:
    return export_of(OTHER_KEY)


@dataclass(frozen=True)
class Answer:
    """A verifier's answer: accepted or not, and what it said."""

    accepted: bool
    said: str


def project(case: Case) -> Answer:
    """``trialguard audit verify``'s checks (offline, and against the checkpoints when live)."""
    s = scenario()
    public_key = KEY.public_key()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "export.jsonl"
        path.write_bytes(case.make(s))
        try:
            verified = check_export(path, public_key)
        except VerificationError as e:
            return Answer(False, f"line {e.line}: {e.reason}")
    if case.live is None:
        return Answer(True, f"{verified.records} records, {verified.partitions} partitions")
    as_of = case.as_of(s) if case.as_of else None
    live = compare_checkpoints(case.live(s), CHECKPOINTS_TOPIC, verified, public_key, as_of)
    if live.problems:
        return Answer(False, live.problems[0])
    return Answer(True, f"{live.compared} live checkpoints agree, {len(live.beyond)} beyond")


def independent(case: Case) -> Answer:
    """The independent verifier's answer."""
    s = scenario()
    try:
        fmt, parts, _ = iv.verify(case.make(s), KEY.public_key())
        checkpoints = case.live(s) if case.live else []
        beyond = iv.compare_live(fmt, parts, checkpoints, KEY.public_key(), case.as_of(s) if case.as_of else None)
    except iv.RefusedError as e:
        return Answer(False, str(e))
    return Answer(True, f"{sum(len(p.offsets) for p in parts.values())} records, {len(beyond)} beyond")


def _verdict(answer: Answer) -> str:
    return ("accepted" if answer.accepted else "REFUSED") + f": {answer.said}"


def table() -> str:
    """The markdown table of every case and both answers."""
    rows = ["| case | expected | trialguard audit verify | independent verifier |", "|---|---|---|---|"]
    for case in CASES:
        a, b = project(case), independent(case)
        rows.append(f"| {case.name} | {'accept' if case.accept else 'refuse'} | {_verdict(a)} | {_verdict(b)} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(table())
