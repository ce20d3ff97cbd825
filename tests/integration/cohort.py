"""A simulated cohort for the live suites, and what the offline replay makes of it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from contracts import encode, parse_event
from events.replay import Replay
from protocol.nct06904729 import PROTOCOL
from tests.integration.conftest import ROOT


def simulated(folder: Path, participants: int, seed: int, events: int) -> list[bytes]:
    """The first ``events`` events of a simulated cohort, in log order."""
    out = folder / f"cohort-{participants}-{seed}.jsonl"
    subprocess.run(
        [sys.executable, "-m", "services.cli", "simulate", "--participants", str(participants), "--seed", str(seed),
         "--out", str(out)],
        cwd=ROOT, check=True, capture_output=True,
    )  # fmt: skip
    lines = out.read_bytes().splitlines()
    assert len(lines) >= events, f"{participants} participants gave only {len(lines)} events"
    return lines[:events]


def replayed(lines: list[bytes]) -> list[dict[str, Any]]:
    """What `trialguard replay` makes of the same events."""
    replay = Replay(PROTOCOL)
    return [json.loads(encode(f)) for line in lines for f in replay.feed(parse_event(line))]


def finding_id(finding: dict[str, Any]) -> str:
    return str(finding.get("deviation_id") or finding["alert_id"])


def compare(live: list[dict[str, Any]], offline: list[dict[str, Any]]) -> dict[str, int]:
    """Committed findings against the offline replay: counts of each, duplicates, missing, extra."""
    ids = [finding_id(f) for f in live]

    def key(f: dict[str, Any]) -> str:
        return json.dumps(f, sort_keys=True)

    live_set, offline_set = set(map(key, live)), set(map(key, offline))
    return {
        "committed": len(live),
        "expected": len(offline),
        "duplicates": len(ids) - len(set(ids)),
        "missing": len(offline_set - live_set),
        "extra": len(live_set - offline_set),
    }


def same_findings(live: list[dict[str, Any]], offline: list[dict[str, Any]]) -> None:
    counts = compare(live, offline)
    assert counts["duplicates"] == 0, f"a finding was published twice: {counts}"
    assert (counts["missing"], counts["extra"]) == (0, 0), counts
    assert counts["committed"] == counts["expected"], counts
