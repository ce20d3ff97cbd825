"""Replay benchmark: events/s of the full pipeline against a parse-and-validate-only pass over the
same simulated history, their ratio, peak memory at 100k and at 1M events, and the wall time of
`trialguard replay --jobs N` against --jobs 1.

    .venv/bin/python bench/replay.py [--events 1000000] [--seed 7] [--jobs N] [--skip-jobs]    (or: make bench)

The history is built once by `trialguard simulate` and kept in .cache/bench/. Throughput is timed
in this process (best of --repeat runs); peak memory is each `trialguard replay` child's own
maximum resident set, so it includes the interpreter, pydantic and durable_rules.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from itertools import islice
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from contracts import encode, parse_event  # noqa: E402
from events.jsonl import read_lines  # noqa: E402
from events.replay import Replay  # noqa: E402
from protocol.nct06904729 import PROTOCOL  # noqa: E402

CACHE = ROOT / ".cache" / "bench"
TRIALGUARD = [sys.executable, "-m", "services.cli"]


def history(events: int, seed: int) -> Path:
    """A simulated history of exactly ``events`` lines (built once, then cached)."""
    path = CACHE / f"history-{events}-seed{seed}.jsonl"
    if path.exists():
        return path
    CACHE.mkdir(parents=True, exist_ok=True)
    probe = CACHE / "probe.jsonl"
    subprocess.run(
        [*TRIALGUARD, "simulate", "--participants", "200", "--seed", str(seed), "--out", str(probe)],
        check=True,
        cwd=ROOT,
    )
    per_participant = sum(1 for _ in probe.open("rb")) / 200
    participants = int(events / per_participant * 1.1) + 10
    full = CACHE / f"simulated-{participants}-seed{seed}.jsonl"
    print(f"building a history of {events:,} events ({participants:,} simulated participants)...", file=sys.stderr)
    subprocess.run(
        [*TRIALGUARD, "simulate", "--participants", str(participants), "--seed", str(seed), "--out", str(full)],
        check=True,
        cwd=ROOT,
    )
    with full.open("rb") as source, path.open("wb") as out:
        written = 0
        for line in islice(source, events):
            out.write(line)
            written += 1
    if written < events:
        raise SystemExit(f"the simulator made only {written:,} events")
    return path


def parse_only(path: Path) -> int:
    n = 0
    with path.open("rb") as f:
        for _, line in read_lines(f):
            parse_event(line)
            n += 1
    return n


def full_pipeline(path: Path) -> int:
    gc.set_threshold(50_000, 20, 100)  # as `trialguard` sets it (services/cli.py)
    replay = Replay(PROTOCOL)
    n = 0
    with path.open("rb") as f, open(os.devnull, "wb") as out:
        for _, line in read_lines(f):
            for finding in replay.feed(parse_event(line)):
                out.write(encode(finding) + b"\n")
            n += 1
    return n


def best_rate(run: object, path: Path, repeat: int) -> tuple[float, float]:
    """Events per second of wall time and per CPU second of this process, each the best of
    ``repeat`` runs. On a machine other work shares, the CPU figure is the steadier one: wall
    time also counts the other processes' turns on the cores."""
    best_wall = best_cpu = float("inf")
    n = 0
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        n = run(path)  # type: ignore[operator]
        best_wall = min(best_wall, time.perf_counter() - wall)
        best_cpu = min(best_cpu, time.process_time() - cpu)
    return n / best_wall, n / best_cpu


def peak_rss_mib(path: Path, events: int) -> tuple[float, int]:
    """Peak RSS of `trialguard replay` over the first ``events`` lines, and the participants seen."""
    head = CACHE / f"head-{events}.jsonl"
    with path.open("rb") as source, head.open("wb") as out:
        out.writelines(islice(source, events))
    with head.open("rb") as lines:
        participants = len({json.loads(line)["participant_id"] for line in lines})
    # The child reports its own VmHWM: ru_maxrss would also count the pages it shared with this
    # (large) process between fork and exec.
    measure = (
        "import sys; from services.cli import main; code = main(['replay', sys.argv[1]]);"
        "hwm = open('/proc/self/status').read().split('VmHWM:')[1].split()[0]; print(hwm, file=sys.stderr)"
    )
    child = subprocess.run([sys.executable, "-c", measure, str(head)], cwd=ROOT, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, check=False)  # fmt: skip
    if child.returncode != 0:
        raise SystemExit(f"replay of {head} failed: {child.stderr.decode()[-500:]}")
    head.unlink()
    return int(child.stderr.split()[-1]) / 1024, participants


def jobs_rate(path: Path, events: int, jobs: int, repeat: int, folder: Path) -> tuple[float, float, bytes]:
    """Events/s of `trialguard replay --jobs N` as a child process (wall time, interpreter start
    included; best of ``repeat``), the CPU seconds of that run (its workers included: on a busy
    machine the wall time says little about the cost of going parallel), and its findings."""
    out = folder / f"findings-{jobs}.jsonl"
    best, cpu = float("inf"), 0.0
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        child = subprocess.run([*TRIALGUARD, "replay", str(path), "--jobs", str(jobs), "--out", str(out)], cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)  # fmt: skip
        elapsed = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if child.returncode not in (0, 1):
            raise SystemExit(f"replay --jobs {jobs} of {path} failed: {child.stderr.decode()[-500:]}")
        if elapsed < best:
            best, cpu = elapsed, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return events / best, cpu, out.read_bytes()


def machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    return (
        f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()} {platform.release()}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--repeat", type=int, default=2, help="timed runs of each pass; the best counts (0: only build the history)"
    )
    parser.add_argument(
        "--jobs", type=int, default=os.cpu_count() or 1, help="worker processes to compare with 1 (default: cores)"
    )
    parser.add_argument("--skip-jobs", action="store_true", help="do not time `trialguard replay --jobs N`")
    args = parser.parse_args()
    path = history(args.events, args.seed)
    if args.repeat < 1:
        return
    print(f"machine: {machine()}")
    print(f"history: {path.relative_to(ROOT)} ({path.stat().st_size / 1e6:,.0f} MB, {args.events:,} events)")
    parse_rate, parse_cpu = best_rate(parse_only, path, args.repeat)
    print(f"parse and validate only: {parse_rate:>10,.0f} events/s")
    full_rate, full_cpu = best_rate(full_pipeline, path, args.repeat)
    print(f"full replay pipeline:    {full_rate:>10,.0f} events/s")
    print(f"ratio (full / parse-only throughput): {full_rate / parse_rate:.2f}")
    print(
        f"  the same per CPU second of this process: parse-only {parse_cpu:,.0f}, full {full_cpu:,.0f} events/s, "
        f"ratio {full_cpu / parse_cpu:.2f}"
    )
    for events in sorted({min(100_000, args.events), args.events}):
        rss, participants = peak_rss_mib(path, events)
        print(
            f"peak RSS of `trialguard replay` over {events:>9,} events: {rss:7.1f} MiB ({participants:,} participants)"
        )
    if not args.skip_jobs:
        with tempfile.TemporaryDirectory(prefix="bench-replay-") as folder:
            single, single_cpu, expected = jobs_rate(path, args.events, 1, args.repeat, Path(folder))
            print(f"replay --jobs 1: {single:>10,.0f} events/s (wall time of the command; {single_cpu:,.0f} s CPU)")
            if args.jobs > 1:
                rate, cpu, findings = jobs_rate(path, args.events, args.jobs, args.repeat, Path(folder))
                if findings != expected:
                    raise SystemExit(f"replay --jobs {args.jobs} wrote other findings than --jobs 1")
                speed_up = f"speed-up {rate / single:.2f}x over --jobs 1; {cpu:,.0f} s CPU"
                print(f"replay --jobs {args.jobs}: {rate:>10,.0f} events/s ({speed_up})")


if __name__ == "__main__":
    main()
