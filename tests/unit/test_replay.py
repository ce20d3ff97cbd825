"""Offline replay: the JSON-lines log adapter, the pure Replay, and ``trialguard replay``."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from contracts import ContractError, encode, parse_event
from events.jsonl import read_lines, write_lines
from events.replay import Replay
from protocol.nct06904729 import PROTOCOL
from services.files import atomic_output
from services.replay import run
from services.replay_report import Progress, progress_for
from tests.builders import EXAMPLE_EVENTS, consent, example_lines, expected_rules, lab

ROOT = Path(__file__).resolve().parents[2]


def replay_bytes(data: bytes) -> tuple[int, bytes, str]:
    """Run ``trialguard replay -`` in process on ``data``: (exit code, stdout bytes, stderr text)."""
    stdout, stderr = io.BytesIO(), io.StringIO()
    code = run("-", None, "NCT06904729", stdin=io.BytesIO(data), stdout=stdout, stderr=stderr)
    return code, stdout.getvalue(), stderr.getvalue()


def cli(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    env = {k: v for k, v in os.environ.items() if k != "TRIALGUARD_STUDY_ID"}
    return subprocess.run(
        [sys.executable, "-m", "services.cli", "replay", *args],
        input=stdin,
        capture_output=True,
        cwd=ROOT,
        env=env,
        timeout=60,
        check=False,
    )


def words(text: str) -> str:
    """``text`` with every run of whitespace made one space: summary rows without their padding."""
    return " ".join(text.split())


def example() -> bytes:
    return b"".join(line + b"\n" for line in example_lines())


def with_bad_lines() -> tuple[bytes, list[int]]:
    """The example with a non-JSON line and a negative weight inserted; their line numbers."""
    lines = example_lines()
    weighed = max(i for i, line in enumerate(lines) if b'"weight_kg"' in line)
    negative = json.loads(lines[weighed])
    negative["payload"]["weight_kg"] = -27.5
    not_json, negative_weight = b"{this is not json", json.dumps(negative).encode()
    lines.insert(weighed + 1, negative_weight)
    lines.insert(len(lines) // 3, not_json)
    return b"".join(line + b"\n" for line in lines), [lines.index(not_json) + 1, lines.index(negative_weight) + 1]


# --- events.jsonl ------------------------------------------------------------------------------


def test_reader_numbers_lines_skips_blanks_and_strips_lf_and_crlf() -> None:
    stream = io.BytesIO(b'{"a":1}\n\n  \r\n{"b":2}\r\n{"c":3}')
    assert list(read_lines(stream)) == [(1, b'{"a":1}'), (4, b'{"b":2}'), (5, b'{"c":3}')]


def test_reader_hands_over_invalid_utf8_untouched() -> None:
    assert list(read_lines(io.BytesIO(b"\xff\xfe\n"))) == [(1, b"\xff\xfe")]


def test_reader_streams_rather_than_reading_everything() -> None:
    def endless() -> Iterator[bytes]:
        n = 0
        while True:
            n += 1
            yield b"%d\n" % n

    lines = read_lines(endless())  # a file this long would not fit in memory
    assert [next(lines) for _ in range(3)] == [(1, b"1"), (2, b"2"), (3, b"3")]


def test_writer_writes_one_encoded_model_per_line_and_reader_reads_them_back() -> None:
    events = [consent("participant"), lab()]
    stream = io.BytesIO()
    assert write_lines(stream, events) == 2
    assert stream.getvalue() == b"".join(encode(e) + b"\n" for e in events)
    stream.seek(0)
    assert [line for _, line in read_lines(stream)] == [encode(e) for e in events]


# --- events.replay -----------------------------------------------------------------------------


def test_replay_of_the_example_raises_what_it_expects_for_the_rules_implemented() -> None:
    replay = Replay(PROTOCOL)
    by_participant: dict[str, list[str]] = defaultdict(list)
    for _, line in read_lines(io.BytesIO(example())):
        for finding in replay.feed(parse_event(line)):
            by_participant[finding.participant_id].append(finding.rule_id)
    expected = expected_rules({r.rule_id for r in PROTOCOL.rules})
    assert {pid: sorted(by_participant.get(pid, [])) for pid in expected} == expected
    assert set(by_participant) <= set(expected)
    assert set(replay.states) == set(expected)
    assert replay.findings_by_rule == Counter(r for rules in by_participant.values() for r in rules)
    assert replay.processed == len(example_lines())
    assert replay.duplicates == 0


def test_replay_counts_a_duplicate_and_raises_nothing_for_it() -> None:
    replay = Replay(PROTOCOL)
    first = lab(participant="P-9", at="2025-11-01T08:00:00+08:00")  # before any consent: CONSENT-01
    raised = replay.feed(first)
    assert replay.feed(first) == []
    assert (replay.processed, replay.duplicates) == (1, 1)
    assert sum(replay.findings_by_rule.values()) == len(raised)


def test_replay_rejects_an_event_of_another_study_and_keeps_state() -> None:
    replay = Replay(PROTOCOL)
    with pytest.raises(ContractError) as raised:
        replay.feed(lab(study="NCT00000000"))
    assert raised.value.field == "study_id"
    assert replay.states == {}
    assert replay.processed == 0


# --- services.replay ---------------------------------------------------------------------------


def test_example_replays_to_its_expected_findings_one_json_object_per_line() -> None:
    code, out, err = replay_bytes(example())
    assert code == 0, err
    findings = [json.loads(line) for line in out.splitlines()]
    by_participant: dict[str, list[str]] = defaultdict(list)
    for f in findings:
        by_participant[f["participant_id"]].append(f["rule_id"])
    expected = expected_rules({r.rule_id for r in PROTOCOL.rules})
    assert {pid: sorted(by_participant.get(pid, [])) for pid in expected} == expected
    assert set(by_participant) <= set(expected)
    assert out.endswith(b"\n") or out == b""


def test_same_input_gives_byte_identical_output() -> None:
    assert replay_bytes(example())[1] == replay_bytes(example())[1]


def test_bad_lines_are_reported_by_number_and_everything_else_still_comes_out() -> None:
    data, bad = with_bad_lines()
    code, out, err = replay_bytes(data)
    assert code == 1
    assert out == replay_bytes(example())[1]
    assert f"<stdin>:{bad[0]}: <message>: not JSON" in err
    assert f"<stdin>:{bad[1]}: payload.weight_kg" in err
    assert f"contract errors 2 lines {bad[0]}, {bad[1]} outputs" in words(err)


def test_invalid_utf8_and_other_studies_are_contract_errors_of_their_line() -> None:
    other = json.loads(example_lines()[0])
    other["study_id"] = "NCT00000000"
    data = example() + b"\xff\xfe{}\n" + json.dumps(other).encode() + b"\n"
    n = len(example_lines())
    code, out, err = replay_bytes(data)
    assert code == 1
    assert out == replay_bytes(example())[1]
    assert f"<stdin>:{n + 1}: <message>: not UTF-8" in err
    assert f"<stdin>:{n + 2}: study_id: 'NCT00000000' is not the study being replayed" in err


def test_summary_counts_lines_events_duplicates_errors_and_outputs_by_rule() -> None:
    lines = example_lines()
    data = b"\n".join([*lines, lines[0], b"[]", b""])  # a duplicate, a non-object, a blank line
    code, out, err = replay_bytes(data)
    assert code == 1
    summary = err[err.index("replay of <stdin>") :].splitlines()
    outputs = Counter(json.loads(line)["rule_id"] for line in out.splitlines())
    assert [words(row) for row in summary] == [
        f"replay of <stdin> under NCT06904729 protocol v{PROTOCOL.version}",
        f"lines read {len(lines) + 2}",
        f"events processed {len(lines)}",
        "duplicates 1",
        f"contract errors 1 line {len(lines) + 2}",
        f"outputs {outputs.total()}",
        *(f"{rule} {count}" for rule, count in sorted(outputs.items())),
    ]
    assert all(row.startswith("    ") for row in summary[6:])  # by rule: indented under outputs


def test_the_summary_lists_the_first_twenty_rejected_lines_and_counts_the_rest() -> None:
    _, _, err = replay_bytes(b"x\n" * 25)
    assert "lines 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20 and 5 more" in err


def test_out_writes_the_file_atomically_and_nothing_when_interrupted(tmp_path: Path) -> None:
    source = tmp_path / "events.jsonl"
    source.write_bytes(example())
    target = tmp_path / "findings.jsonl"
    stderr = io.StringIO()
    code = run(str(source), str(target), "NCT06904729", stdin=io.BytesIO(), stdout=io.BytesIO(), stderr=stderr)
    assert code == 0
    assert target.read_bytes() == replay_bytes(example())[1]
    assert {p.name for p in tmp_path.iterdir()} == {"events.jsonl", "findings.jsonl"}  # no temporary left

    def interrupted_rewrite() -> None:
        with atomic_output(target) as f:
            f.write(b"half")
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        interrupted_rewrite()
    assert target.read_bytes() == replay_bytes(example())[1]
    assert {p.name for p in tmp_path.iterdir()} == {"events.jsonl", "findings.jsonl"}


def test_usage_errors_exit_2_with_a_message(tmp_path: Path) -> None:
    def usage(source: str, out: str | None = None, study: str = "NCT06904729") -> tuple[int, str]:
        stderr = io.StringIO()
        code = run(source, out, study, stdin=io.BytesIO(), stdout=io.BytesIO(), stderr=stderr)
        return code, stderr.getvalue()

    source = tmp_path / "events.jsonl"
    source.write_bytes(example())
    assert usage(str(tmp_path / "absent.jsonl")) == (
        2,
        f"trialguard replay: {tmp_path / 'absent.jsonl'}: no such file\n",
    )
    assert usage(str(source), str(tmp_path / "no" / "such" / "out.jsonl"))[0] == 2
    assert usage(str(source), str(tmp_path))[0] == 2
    assert usage(str(source), str(source)) == (
        2,
        f"trialguard replay: --out {source}: is the input file; it would be replaced by the findings\n",
    )
    code, message = usage(str(source), study="NCT00000000")
    assert code == 2
    assert "NCT00000000" in message
    assert source.read_bytes() == example()


# --- progress ----------------------------------------------------------------------------------


def at(position: int) -> Callable[[], int]:
    """What a file's ``tell`` would answer at ``position``."""
    return lambda: position


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_progress_on_a_terminal_redraws_at_most_four_times_a_second() -> None:
    stream, clock = io.StringIO(), Clock()
    progress = Progress(stream, "big.jsonl", 40_000_000, tty=True, clock=clock)
    for step in range(1, 101):
        clock.now += 0.01  # 100 updates in one second
        progress.update(step * 1000, at(step * 400_000))
    assert 3 <= stream.getvalue().count("\r") <= 4
    last = stream.getvalue().split("\r")[-1]
    assert "MB" in last
    assert "%" in last
    assert "events/s" in last
    progress.clear()
    assert stream.getvalue().endswith("\r\x1b[K")


def test_progress_elsewhere_prints_a_plain_line_every_ten_percent() -> None:
    stream, clock = io.StringIO(), Clock()
    progress = Progress(stream, "big.jsonl", 1_000_000, tty=False, clock=clock)
    for position in range(0, 1_000_001, 1000):
        clock.now += 0.3  # every update is due: what is printed depends on the position only
        progress.update(position // 100, at(position))
    lines = stream.getvalue().splitlines()
    assert [line.split()[1] for line in lines] == [f"{p}%" for p in range(10, 101, 10)]
    assert "\r" not in stream.getvalue()
    assert lines[-1].startswith("replay: 100% of big.jsonl (1.0/1.0 MB, ")


def test_progress_only_for_regular_files_over_the_threshold(tmp_path: Path) -> None:
    small = tmp_path / "small.jsonl"
    small.write_bytes(b"x" * 100)
    with small.open("rb") as f:
        assert progress_for(f, "small", io.StringIO()) is None
        assert progress_for(f, "small", io.StringIO(), min_bytes=10) is not None
    assert progress_for(io.BytesIO(b"x" * 100), "-", io.StringIO(), min_bytes=10) is None
    read, write = os.pipe()
    with os.fdopen(read, "rb") as pipe, os.fdopen(write, "wb"):
        assert progress_for(pipe, "-", io.StringIO(), min_bytes=0) is None


# --- the command -------------------------------------------------------------------------------


def test_cli_replays_a_file_twice_byte_identically_and_reads_stdin() -> None:
    first = cli(str(EXAMPLE_EVENTS))
    assert first.returncode == 0, first.stderr
    assert first.stdout == cli(str(EXAMPLE_EVENTS)).stdout
    assert first.stdout == replay_bytes(example())[1]
    piped = cli("-", stdin=EXAMPLE_EVENTS.read_bytes())
    assert (piped.returncode, piped.stdout) == (0, first.stdout)
    assert b"replay of <stdin> under NCT06904729" in piped.stderr
    for line in first.stdout.splitlines():
        finding = json.loads(line)
        assert isinstance(finding["rule_id"], str)
        assert isinstance(finding["participant_id"], str)


def test_cli_out_bad_lines_and_missing_file(tmp_path: Path) -> None:
    data, bad = with_bad_lines()
    source, target = tmp_path / "events.jsonl", tmp_path / "findings.jsonl"
    source.write_bytes(data)
    done = cli(str(source), "--out", str(target))
    assert done.returncode == 1
    assert done.stdout == b""
    for number in bad:
        assert f"{source}:{number}: ".encode() in done.stderr
    assert target.read_bytes() == replay_bytes(example())[1]

    missing = cli(str(tmp_path / "absent.jsonl"))
    assert missing.returncode == 2
    assert missing.stderr.decode() == f"trialguard replay: {tmp_path / 'absent.jsonl'}: no such file\n"


def test_replay_loads_no_broker_web_or_gateway_stack() -> None:
    """An auditor's offline replay carries only what it uses: its peak memory is a benchmark."""
    check = (
        "import sys; from services.cli import main\n"
        "main(['replay', 'examples/three-participants.jsonl', '--out', '/dev/null'])\n"
        "print(sorted(m for m in ('aiokafka', 'fastapi', 'faststream', 'hl7apy', 'uvicorn') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", check], cwd=ROOT, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
