"""Instructions per event of the replay's parse and step, counted by valgrind: a measure of a
change to the step that the load of a shared machine does not move (timings there vary by more
than most changes do; see docs/benchmarks.md, "Replay: issue 21, item 6").

    .venv/bin/python bench/replay_instructions.py [--events 1000000] [--seed 7] [--every 25]

The sample is every participant whose id's CRC-32 is a multiple of ``--every``, whole, from the
history `bench/replay.py` builds (run it first): the same mix of event types as the history.
Instructions are not time: the step reads participants' states cold on the whole history, and
the parse runs compiled code; compare a change against its parent, not the step with the parse.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".cache" / "bench"

RUN = """
import gc, sys
sys.path.insert(0, {root!r})
from contracts import encode, parse_event
from events.jsonl import read_lines
from events.replay import Replay
from protocol.nct06904729 import PROTOCOL
gc.set_threshold(50_000, 20, 100)
replay = Replay(PROTOCOL)
with open(sys.argv[1], "rb") as f:
    for _, line in read_lines(f):
        event = parse_event(line)
        if sys.argv[2] == "full":
            for finding in replay.feed(event):
                encode(finding)
"""


def sample(history: Path, every: int) -> tuple[Path, int]:
    """Every event of the participants whose id's CRC-32 is a multiple of ``every``."""
    out, events = CACHE / f"{history.stem}-every{every}.jsonl", 0
    with history.open("rb") as source, out.open("wb") as kept:
        for line in source:
            if zlib.crc32(json.loads(line)["participant_id"].encode()) % every == 0:
                kept.write(line)
                events += 1
    return out, events


def instructions(path: Path, mode: str) -> int:
    """Instructions the interpreter runs to parse (``parse``) or replay (``full``) ``path``."""
    run = subprocess.run(
        ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null",
         sys.executable, "-c", RUN.format(root=str(ROOT)), str(path), mode],
        cwd=ROOT, capture_output=True, text=True, check=True,
        env={**os.environ, "PYTHONHASHSEED": "0"},  # the same dict probes in every run
    )  # fmt: skip
    found = re.search(r"I\s+refs:\s+([\d,]+)", run.stderr)
    if found is None:
        raise SystemExit(f"valgrind gave no instruction count: {run.stderr[-500:]}")
    return int(found.group(1).replace(",", ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--every", type=int, default=25, help="keep participants whose id's CRC-32 is a multiple")
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed")
    history = CACHE / f"history-{args.events}-seed{args.seed}.jsonl"
    if not history.exists():
        raise SystemExit(f"no {history.relative_to(ROOT)}: run bench/replay.py --events {args.events} first")
    path, events = sample(history, args.every)
    parse = instructions(path, "parse")
    full = instructions(path, "full")
    print(f"sample: {events:,} events of {history.name} (participant ids' CRC-32 a multiple of {args.every})")
    print(f"instructions per event: parse {parse / events:,.0f}, step {(full - parse) / events:,.0f}")


if __name__ == "__main__":
    main()
