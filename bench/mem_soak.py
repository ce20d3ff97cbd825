"""Where the gateway's and the dashboard's memory goes at the soak's load (issue 21, item 4).

    .venv/bin/python bench/mem_soak.py [--minutes 10] [--rate 200] [--every 1] [--gateway-only]
                                       [--broker-restart-minute M]

The soak's setup (bench/soak.py: its own broker, one rules instance, the gateway, the dashboard,
the same cohort and ``drive``), without faults, with the gateway and the dashboard run under
``bench/mem_probe.py`` (tracemalloc on). Every --every minutes each is sent SIGUSR1 and dumps a
snapshot; at the end the growth between the first snapshot at or after --from minutes and the last
is printed grouped by traceback, beside RSS, the traced total and glibc's arenas. Slower than the
product under tracing: a measure of what grows, not of the slopes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from soak_load import Load, cohort, drive  # noqa: E402
from soak_processes import Broker, Child, free_port  # noqa: E402

from services.gateway.sources import SourceStore  # noqa: E402
from services.kafka import KafkaSettings, ensure_topics  # noqa: E402

STUDY = "NCT06904729"
NAMESPACE = "soak"
MIB = 2**20


class Probed(Child):
    """A child run under ``bench/mem_probe.py`` (``prefix``: where its snapshots go)."""

    def __init__(self, name: str, command: list[str], log: Path, http_port: int, prefix: Path) -> None:
        super().__init__(name, command, log, http_port)
        self.prefix = prefix

    def start(self) -> Child:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen([sys.executable, str(ROOT / "bench" / "mem_probe.py"), str(self.prefix), "--",
                                          *self.command], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)  # fmt: skip
        self.incarnation += 1
        self.started = time.perf_counter()
        return self


async def run(args: argparse.Namespace) -> None:
    folder = ROOT / ".cache" / "mem-soak" / time.strftime("run-%Y%m%d-%H%M%S")
    folder.mkdir(parents=True)
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    stream = cohort(folder, int(args.rate * args.cohort_minutes * 60), args.seed)[: int(args.rate * args.minutes * 60)]
    print(f"folder {folder}; {len(stream):,} events of {len({s.participant_id for s in stream}):,} participants")
    broker = Broker(folder / "kafka")
    broker.up()
    settings = KafkaSettings(broker.bootstrap, STUDY, NAMESPACE)
    await ensure_topics(settings)
    common = ["--bootstrap-servers", broker.bootstrap, "--study", STUDY, "--namespace", NAMESPACE]
    store = SourceStore(folder / "gateway" / "sources.sqlite3")
    keys = {site: store.add(f"lis.{site.lower().replace('-', '')}", site)[1]
            for site in sorted({s.site_id for s in stream if s.lab})}  # fmt: skip
    rules_port, gateway_port, dashboard_port = free_port(), free_port(), free_port()
    rules = Child("rules", ["--log-level", "warning", "rules", "serve", *common, "--http-port", str(rules_port)],
                  folder / "rules.log", rules_port)  # fmt: skip
    gateway = Probed("gateway", ["--log-level", "warning", "gateway", "serve", *common, "--port", str(gateway_port),
                                 "--mllp-port", str(free_port()), "--data-dir", str(folder / "gateway")],
                     folder / "gateway.log", gateway_port, folder / "gateway")  # fmt: skip
    dashboard = Probed("dashboard", ["--log-level", "warning", "dashboard", "serve", *common, "--port",
                                     str(dashboard_port), "--data-dir", str(folder / "dashboard")],
                       folder / "dashboard.log", dashboard_port, folder / "dashboard")  # fmt: skip
    probed = [gateway] if args.gateway_only else [gateway, dashboard]
    everyone = [rules, *probed]
    for child in everyone:
        child.start()
    try:
        while not all([await c.healthy() for c in everyone]):
            if any(c.exited() is not None for c in everyone):
                raise SystemExit(f"a process ended: logs in {folder}")
            await asyncio.sleep(0.5)
        load = Load()
        stop = asyncio.Event()
        started = time.perf_counter()
        driver = asyncio.create_task(drive(settings, f"http://127.0.0.1:{gateway_port}", keys, stream, args.rate,
                                           load, stop))  # fmt: skip
        next_dump = 0.0
        restarting: asyncio.Task[None] | None = None
        restarts = sorted(args.broker_restart_minute or [])
        while not driver.done():
            await asyncio.sleep(1)
            minute = (time.perf_counter() - started) / 60
            if restarts and minute >= restarts[0] and (restarting is None or restarting.done()):
                restarts.pop(0)
                if restarting is not None:
                    await restarting  # raises if the broker did not come back
                await asyncio.to_thread(broker.kill)
                restarting = asyncio.create_task(asyncio.to_thread(broker.up))
                print(f"minute {minute:.1f}: SIGKILL the broker, restarting", flush=True)
            if minute >= next_dump:
                for child in probed:
                    assert child.pid is not None
                    os.kill(child.pid, signal.SIGUSR1)
                print(f"minute {minute:.1f}: sent {load.sent:,} ({load.via_gateway:,} via the gateway)", flush=True)
                next_dump += args.every
            for child in everyone:
                if child.exited() is not None:
                    raise SystemExit(f"{child.name} ended: its log in {folder}")
        if restarting is not None:
            await restarting  # raises if the broker did not come back
        await asyncio.sleep(5)
        for child in probed:
            assert child.pid is not None
            os.kill(child.pid, signal.SIGUSR1)
        await asyncio.sleep(20)  # the last snapshots written
    finally:
        for child in everyone:
            child.stop()
        broker.down()
        shutil.rmtree(folder / "kafka", ignore_errors=True)
    for child in probed:
        compare(child.prefix, args.from_minute, args.top)


def compare(prefix: Path, from_minute: float, top: int) -> None:
    """Print the probe's lines, and the growth by traceback between the first snapshot at or after
    ``from_minute`` and the last."""
    lines = [json.loads(line) for line in prefix.with_suffix(".jsonl").read_text().splitlines()]
    print(f"\n=== {prefix.name}")
    columns = {"RSS": "rss", "traced": "traced", "glibc used": "in_use", "glibc free": "free",
               "glibc mmap": "mmapped", "pymalloc": "pymalloc_arenas", "pym. used": "pymalloc_used",
               "[heap]": "heap", "anon": "anon", "file": "file", "shmem": "shmem"}  # fmt: skip
    print(f"{'n':>3} {'s':>6} " + " ".join(f"{name:>10}" for name in columns) + "   (MiB; pymalloc: arenas of 1 MiB)")
    for line in lines:
        values = (line.get(key, 0) / (1 if key == "pymalloc_arenas" else MIB) for key in columns.values())
        print(f"{line['n']:>3} {line['seconds']:>6.0f} " + " ".join(f"{value:>10.1f}" for value in values))
    first = next(line for line in lines if line["seconds"] >= lines[0]["seconds"] + from_minute * 60)
    last = lines[-1]
    minutes = (last["seconds"] - first["seconds"]) / 60
    print(f"from dump {first['n']} to {last['n']} ({minutes:.1f} min): RSS {(last['rss'] - first['rss']) / MIB:+.2f} "
          f"MiB, traced {(last['traced'] - first['traced']) / MIB:+.2f} MiB")  # fmt: skip
    sizes = sorted(set(first.get("anon_by_size", {})) | set(last.get("anon_by_size", {})), key=int)
    grown = [(last.get("anon_by_size", {}).get(k, 0) - first.get("anon_by_size", {}).get(k, 0), k) for k in sizes]
    print(f"threads {first.get('threads')} -> {last.get('threads')}; anonymous mappings' RSS change by mapping size: "
          + ", ".join(f"{k} KiB {d / MIB:+.2f} MiB" for d, k in sorted(grown, reverse=True)[:6] if d))  # fmt: skip
    if not Path(f"{prefix}-{first['n']}.snap").exists():
        return  # run without tracemalloc
    old = tracemalloc.Snapshot.load(f"{prefix}-{first['n']}.snap")
    new = tracemalloc.Snapshot.load(f"{prefix}-{last['n']}.snap")
    noise = tracemalloc.Filter(False, tracemalloc.__file__)
    old, new = old.filter_traces([noise]), new.filter_traces([noise])
    for key in ("filename", "traceback"):
        print(f"-- top {top} by {key}")
        for stat in new.compare_to(old, key)[:top]:
            print(f"{stat.size_diff / 1024:+9.1f} KiB {stat.count_diff:+8d} blocks (now {stat.size / 1024:,.0f} KiB)")
            frames = stat.traceback.format(limit=8 if key == "traceback" else 1)
            print("      " + "\n      ".join(frames))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--cohort-minutes", type=float, default=30, help="the cohort of a soak this long")
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--every", type=float, default=1, help="minutes between two snapshots")
    parser.add_argument("--from-minute", type=float, default=3, help="the growth is counted from this minute")
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--compare", type=Path, help="only compare the snapshots of this prefix")
    parser.add_argument("--broker-restart-minute", type=float, action="append",
                        help="SIGKILL and restart the broker then (may be given again)")  # fmt: skip
    parser.add_argument("--gateway-only", action="store_true", help="run and probe the gateway, not the dashboard")
    args = parser.parse_args()
    if args.compare:
        compare(args.compare, args.from_minute, args.top)
    else:
        asyncio.run(run(args))


if __name__ == "__main__":
    main()
