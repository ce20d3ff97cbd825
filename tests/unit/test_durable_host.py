"""durable_rules' host without its polling threads (``services.durable_host``): the same findings,
no thread. Each case runs in an interpreter of its own, since the host is made once per process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "three-participants.jsonl"

REPLAY = """
import json, sys, threading
from services.durable_host import quiet_durable_host
installed = quiet_durable_host() if sys.argv[2] == "quiet" else None
from contracts import encode, parse_event
from events.replay import Replay
from protocol.nct06904729 import PROTOCOL
replay = Replay(PROTOCOL)
findings = [encode(f).decode() for line in open(sys.argv[1], "rb") for f in replay.feed(parse_event(line))]
threads = sorted(t.name for t in threading.enumerate() if t is not threading.main_thread())
print(json.dumps({"installed": installed, "findings": findings, "threads": threads}))
"""


def replay(mode: str) -> dict[str, object]:
    out = subprocess.run([sys.executable, "-c", REPLAY, str(EXAMPLE), mode], cwd=ROOT, capture_output=True,
                         check=True, timeout=120)  # fmt: skip
    result: dict[str, object] = json.loads(out.stdout)
    return result


def test_the_quiet_host_decides_the_same_findings_and_starts_no_thread() -> None:
    usual, quiet = replay("usual"), replay("quiet")
    assert usual["threads"], "durable_rules' own host polls from threads of its own: the reason for the quiet one"
    assert quiet["installed"] is True
    assert quiet["threads"] == []
    assert quiet["findings"] == usual["findings"]
    assert len(quiet["findings"]) == 2  # type: ignore[arg-type]


def test_the_command_line_installs_it_before_any_ruleset(tmp_path: Path) -> None:
    script = (
        "import sys, threading\n"
        "from services.cli import main\n"
        "code = main(['replay', sys.argv[1], '--out', sys.argv[2]])\n"
        "print(code, len([t for t in threading.enumerate() if t is not threading.main_thread()]))\n"
    )
    out = tmp_path / "findings.jsonl"
    done = subprocess.run([sys.executable, "-c", script, str(EXAMPLE), str(out)], cwd=ROOT, capture_output=True,
                          check=True, timeout=120, text=True)  # fmt: skip
    assert done.stdout.split()[-2:] == ["0", "0"]
    assert len(out.read_bytes().splitlines()) == 2


def test_a_host_made_before_is_left_as_it_is() -> None:
    script = (
        "from durable import lang\n"
        "from services.durable_host import QuietHost, quiet_durable_host\n"
        "lang.get_host()\n"
        "print(quiet_durable_host(), isinstance(lang._main_host, QuietHost))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, check=True, timeout=60,
                          text=True)  # fmt: skip
    assert done.stdout.split() == ["False", "False"]
