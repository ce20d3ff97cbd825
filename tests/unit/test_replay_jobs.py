"""``trialguard replay --jobs N``: the same bytes on stdout, stderr and the exit status as ``--jobs 1``,
for a simulated cohort, every kind of bad line, duplicates and audit exports; usage errors; a worker
that dies fails the whole replay."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest

from contracts import ParticipantEvent, parse_event
from events.replay import Replay
from services import replay_jobs, simulator
from services.ledger.chain import Chain
from services.ledger.export_format import ExportedRecord, record_line
from services.replay import run
from services.replay_jobs import Task, owner, route

ROOT = Path(__file__).resolve().parents[2]
STUDY = "NCT06904729"

Result = tuple[int, bytes, str]


def replay(source: str, jobs: int, *, stdin: bytes = b"", out: Path | None = None) -> Result:
    """``trialguard replay SOURCE --jobs N`` in process: (exit status, stdout bytes, stderr text)."""
    stdout, stderr = io.BytesIO(), io.StringIO()
    target = None if out is None else str(out)
    code = run(source, target, STUDY, stdin=io.BytesIO(stdin), stdout=stdout, stderr=stderr, jobs=jobs)
    return code, stdout.getvalue(), stderr.getvalue()


def same_for_every_jobs(source: str, *, stdin: bytes = b"") -> Result:
    """Replay with --jobs 1, 2 and 3; assert the three results are byte-identical; return it."""
    single = replay(source, 1, stdin=stdin)
    for jobs in (2, 3):
        code, out, err = replay(source, jobs, stdin=stdin)
        assert code == single[0], f"--jobs {jobs}: {err}"
        assert out == single[1], f"--jobs {jobs}: findings differ"
        assert err == single[2], f"--jobs {jobs}: stderr differs"
    return single


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    """A simulated cohort of 40 participants, one message per line, in log order."""
    path = tmp_path_factory.mktemp("cohort") / "cohort.jsonl"
    simulator.simulate(40, 11, path, rate=0.6)
    return path.read_bytes().splitlines()


def write(tmp_path: Path, lines: list[bytes], name: str = "events.jsonl", *, end: bytes = b"\n") -> Path:
    path = tmp_path / name
    path.write_bytes(b"\n".join(lines) + end)
    return path


# Valid events spelled so that the cheap routing cannot read their participant id and the JSON
# parse must: each still belongs to its participant and must reach that participant's worker.
TRICKY: list[Callable[[bytes], bytes]] = [
    lambda line: line.replace(b'"participant_id"', b'"participant\\u005fid"'),  # an escaped key
    lambda line: line.replace(b'"participant_id":"', b'"participant_id" : "'),  # spaces
    lambda line: b'{"participant_id":"DECOY-0001",' + line[1:],  # a repeated key: the last one counts
    lambda line: line.replace(b'"site_id":"', b'"site_id":"participant_id","site_id":"'),  # the key as a value
    lambda line: line.replace(b'"source":{"system":"', b'"source":{"system":"\\u0073'),  # an escape elsewhere
]


def bad_lines(template: dict[str, object]) -> list[bytes]:
    """One line of every kind of contract error, including lines that cannot be routed at all."""
    other_study = json.dumps({**template, "study_id": "NCT00000000"}).encode()
    missing = {k: v for k, v in template.items() if k != "occurred_at"}
    pid = str(template["participant_id"])
    return [
        b"{this is not json",
        b"\xff\xfe{}",  # not UTF-8, not routable
        json.dumps(template, separators=(",", ":")).encode().replace(b'"system":"', b'"system":"\xff'),  # routable
        other_study,
        json.dumps(missing).encode(),
        b'{"event_type":"ConsentSigned"}',
        b'{"participant_id":"' + pid.encode() + b'"}',
        b'{"participant_id":5}',
        b'{"participant_id":"\\ud800"}',  # a lone surrogate: the JSON parse cannot encode it
        b"[]",
        b'"a string"',
        b"null",
        b"[" * 100_000,  # too deep for a recursive JSON parser, too large for the contract
        b'{"participant_id":"' + pid.encode() + b'","note":"' + b"x" * 300_000 + b'"}',
        b"\x00",
    ]


def test_a_simulated_cohort_gives_the_same_bytes_with_any_number_of_jobs(tmp_path: Path, cohort: list[bytes]) -> None:
    code, out, err = same_for_every_jobs(str(write(tmp_path, cohort)))
    assert code == 0
    assert len(out.splitlines()) > 20
    assert f"events processed {len(cohort)} duplicates 0" in " ".join(err.split())


def test_every_kind_of_bad_line_duplicates_and_blank_lines(tmp_path: Path, cohort: list[bytes]) -> None:
    lines = list(cohort)
    for i in range(3, len(lines), 7):
        lines[i] = TRICKY[i % len(TRICKY)](lines[i])
    bad = bad_lines(json.loads(cohort[0]))
    for i, line in enumerate(bad * 2):  # more than the summary lists: it must count the rest alike
        lines.insert(len(lines) * (i + 1) // (2 * len(bad) + 1), line)
    for i in range(10, 20):
        lines.insert(len(lines) * i // 20, cohort[i * 7])  # duplicates of earlier events
    lines[5] += b"\r"  # a CRLF line end
    lines[40:40] = [b"", b"   ", b"\t"]
    code, out, err = same_for_every_jobs(str(write(tmp_path, lines, end=b"")))  # the last line lacks \n
    assert code == 1
    assert out
    assert "not JSON" in err
    assert "not UTF-8" in err
    assert "is not the study being replayed" in err
    assert "and 10 more" in err
    assert "duplicates 10 contract errors 30 lines" in " ".join(err.split())


def test_standard_input_is_spooled_and_replays_the_same(cohort: list[bytes]) -> None:
    data = b"\n".join([*cohort[:500], b"not json", *cohort[500:]]) + b"\n"
    code, out, err = same_for_every_jobs("-", stdin=data)
    assert code == 1
    assert out == replay("-", 1, stdin=b"\n".join(cohort) + b"\n")[1]
    assert "<stdin>:501: <message>: not JSON" in err


def test_errors_the_protocol_core_raises_are_reported_alike(
    tmp_path: Path, cohort: list[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    failing = {parse_event(cohort[i]).event_id for i in (30, 300, 900)}
    feed = Replay.feed

    def fragile(self: Replay, event: ParticipantEvent) -> list[object]:
        if event.event_id in failing:
            raise RuntimeError(f"boom on {event.participant_id}")
        return feed(self, event)  # type: ignore[return-value]

    # Forked workers inherit the patch, as they inherit the protocol.
    monkeypatch.setattr(Replay, "feed", fragile)
    code, _, err = same_for_every_jobs(str(write(tmp_path, cohort)))
    assert code == 1
    assert "protocol core raised RuntimeError: boom on" in err
    assert "core errors" in err


def export_of(lines: list[bytes]) -> list[str]:
    """An audit export of ``lines`` as participant-events records of two partitions (by participant),
    a partition's records one after another, as ``trialguard export events`` writes them."""
    chains = [Chain(f"trialguard.{STUDY}.participant-events", p) for p in (0, 1)]
    partitions: list[list[str]] = [[], []]
    for value in lines:
        key = json.loads(value)["participant_id"].encode()
        p = zlib.crc32(key) % 2
        chain, at = chains[p], 1_767_225_600_000 + len(partitions[p])
        head = chain.append(len(partitions[p]), at, key, value)
        record = ExportedRecord(chain.topic, p, len(partitions[p]), at, key, value, head.hex())
        partitions[p].append(record_line(record))
    return partitions[0] + partitions[1]


def test_an_audit_export_replays_the_same(tmp_path: Path, cohort: list[bytes]) -> None:
    export = tmp_path / "export.jsonl"
    export.write_text("\n".join(export_of(cohort[:1500])) + "\n")
    code, out, _ = same_for_every_jobs(str(export))
    assert code == 0
    assert out


def test_a_malformed_export_line_stops_every_job_count_at_the_same_line(tmp_path: Path, cohort: list[bytes]) -> None:
    records = export_of(cohort[:1500])
    records.insert(900, '{"kind": "record"}')
    export = tmp_path / "export.jsonl"
    export.write_text("\n".join(records) + "\n")
    code, out, err = same_for_every_jobs(str(export))
    assert code == 2
    assert out  # what came before the malformed line, as --jobs 1 writes it
    assert err.splitlines()[-1].startswith(f"trialguard replay: {export}:901: missing field(s)")
    for jobs in (1, 2):
        assert replay(str(export), jobs, out=tmp_path / "findings.jsonl")[0] == 2
    assert [p.name for p in tmp_path.iterdir()] == ["export.jsonl"]  # no findings file, no leftovers


def test_out_is_written_the_same_and_no_temporary_file_is_left(
    tmp_path: Path, cohort: list[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    spare = tmp_path / "tmp"
    spare.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spare))
    source = write(tmp_path, [*cohort[:2000], b"{}"])
    results = []
    for jobs in (1, 2):
        target = tmp_path / f"findings-{jobs}.jsonl"
        code, stdout, err = replay(str(source), jobs, out=target)
        results.append((code, stdout, err, target.read_bytes()))
    assert results[0] == results[1]
    assert results[0][0] == 1
    assert results[0][3]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["events.jsonl", "findings-1.jsonl", "findings-2.jsonl", "tmp"]
    assert not list(spare.iterdir())  # the workers' files and folder are gone


def test_a_worker_that_dies_fails_the_replay_and_writes_nothing(
    tmp_path: Path, cohort: list[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    work = replay_jobs.work

    def mortal(task: Task) -> None:
        if task.index == 1:
            os.kill(os.getpid(), signal.SIGKILL)
        work(task)

    monkeypatch.setattr(replay_jobs, "work", mortal)
    target = tmp_path / "findings.jsonl"
    source = write(tmp_path, cohort[:300])
    for out in (None, target):
        code, stdout, err = replay(str(source), 2, out=out)
        assert code == 2
        assert stdout == b""
        assert err == "trialguard replay: worker 2 of 2 died (killed by SIGKILL); nothing was written\n"
    assert not target.exists()


def test_an_event_routed_to_the_wrong_worker_fails_the_replay(
    tmp_path: Path, cohort: list[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(replay_jobs, "route", lambda message, jobs: 0)  # a broken routing
    source = write(tmp_path, cohort[:300])
    code, stdout, err = replay(str(source), 2)
    assert (code, stdout) == (2, b"")
    assert err.startswith(f"trialguard replay: {source}:")
    assert err.endswith("(a bug in replay --jobs); nothing was written\n")


def test_routing_agrees_with_the_parser(cohort: list[bytes]) -> None:
    for line in cohort[:200]:
        for variant in [line, *(tricky(line) for tricky in TRICKY)]:
            event = parse_event(variant)
            for jobs in (2, 3, 7):
                assert route(variant, jobs) == owner(event.participant_id.encode(), jobs)
    for line in bad_lines(json.loads(cohort[0]))[:2]:
        assert route(line, 3) == 0


def test_sigterm_removes_the_temporary_files(tmp_path: Path, cohort: list[bytes]) -> None:
    env = {k: v for k, v in os.environ.items() if k != "TRIALGUARD_STUDY_ID"} | {"TMPDIR": str(tmp_path)}
    child = subprocess.Popen(
        [sys.executable, "-m", "services.cli", "replay", "-", "--jobs", "2"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
        env=env,
    )
    assert child.stdin is not None
    child.stdin.write(b"\n".join(cohort[:100]) + b"\n")
    child.stdin.flush()  # and left open: the replay is still copying standard input
    try:
        deadline = time.monotonic() + 60
        while not list(tmp_path.glob("trialguard-replay-*/stdin.jsonl")):
            assert child.poll() is None, child.stderr.read() if child.stderr else b""
            assert time.monotonic() < deadline, "the replay did not start copying standard input within 60 s"
            time.sleep(0.05)
        child.send_signal(signal.SIGTERM)
        _, err = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 128 + signal.SIGTERM, err
    assert not list(tmp_path.iterdir())


def test_jobs_below_one_is_a_usage_error() -> None:
    assert replay(str(ROOT / "examples" / "three-participants.jsonl"), 0)[0] == 2
    env = {k: v for k, v in os.environ.items() if k != "TRIALGUARD_STUDY_ID"}
    for jobs in ("0", "-2", "two"):
        child = subprocess.run(
            [sys.executable, "-m", "services.cli", "replay", "examples/three-participants.jsonl", "--jobs", jobs],
            capture_output=True,
            cwd=ROOT,
            env=env,
            timeout=60,
            check=False,
        )
        assert child.returncode == 2
        assert child.stdout == b""
        assert b"argument --jobs:" in child.stderr
