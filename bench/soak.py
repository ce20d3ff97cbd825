"""Soak run: the rules service, the dashboard and the lab gateway for --minutes N at a steady
mixed load, with a rules instance SIGKILLed every --kill-every minutes and one broker SIGKILL.

    .venv/bin/python bench/soak.py [--minutes 30] [--rate 200]    (or: make soak)

Everything runs on a broker of the run's own (free ports, folder in .cache/soak/). The load is a
simulated cohort (`trialguard simulate`) as a trial receives it: participants arriving one after
another, about 600 in their journey at any time, in every phase of it (``soak_load.cohort``): lab
results (sources ``lis.*``) are POSTed as NDJSON to the gateway, one registered source per site,
everything else is produced straight to participant-events, as an EDC and the scheduler would.
Every --sample-seconds (default 60) a row gives the RSS of each process, the rules group's
consumer lag, and the p50/p99 from publishing an event to reading the finding it triggered
(read_committed). At the end the committed findings are compared with the offline replay of
what was committed to participant-events, and the slopes are printed: RSS in MiB per hour after
the warm-up (each incarnation of a restarted process on its own), and the p99 of the last
--warm-up minutes against the first. A benchmark: it prints a verdict against the targets and
exits 0 unless the run itself broke (1: findings not exact or a process exited on its own).
The load is in ``soak_load.py``, the samples in ``soak_sampling.py``, the processes in
``soak_processes.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from replay import machine  # noqa: E402
from soak_load import Load, active_participants, cohort, drive, watch_findings  # noqa: E402
from soak_processes import Broker, Child, free_port, rss_mib  # noqa: E402
from soak_sampling import Sample, lag_of, quantile, slope_per_hour  # noqa: E402

from contracts import ContractError, encode, parse_event  # noqa: E402
from events.replay import Replay  # noqa: E402
from protocol.registry import versions_for  # noqa: E402
from services.gateway.sources import SourceStore  # noqa: E402
from services.kafka import KafkaSettings, ensure_topics, read_to_end  # noqa: E402

STUDY = "NCT06904729"
NAMESPACE = "soak"

TARGET_RSS_MIB_PER_HOUR = 5.0
TARGET_P99_DRIFT = 0.20


# --- the run -------------------------------------------------------------------------------------------


async def run(args: argparse.Namespace) -> int:
    folder = ROOT / ".cache" / "soak" / time.strftime("run-%Y%m%d-%H%M%S")
    folder.mkdir(parents=True)
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    print(f"machine: {machine()}")
    print(f"folder: {folder.relative_to(ROOT)} (process logs)")
    total = int(args.rate * args.minutes * 60)
    stream = cohort(folder, total, args.seed)
    if len(stream) < total:
        print(f"the cohort gives {len(stream):,} events of the {total:,} asked for: the load ends early")
    participants = len({sent.participant_id for sent in stream})
    print(f"load: {args.rate:,.0f} events/s for {args.minutes} min, {len(stream):,} events of {participants:,} "
          f"participants (arriving one after another, about {active_participants(participants):,} in their "
          "journey at once), lab results through the gateway, the rest straight to Kafka")  # fmt: skip

    broker = Broker(folder / "kafka")
    broker.up()
    settings = KafkaSettings(broker.bootstrap, STUDY, NAMESPACE)
    await ensure_topics(settings)
    common = ["--bootstrap-servers", broker.bootstrap, "--study", STUDY, "--namespace", NAMESPACE]
    sites = sorted({sent.site_id for sent in stream if sent.lab})
    store = SourceStore(folder / "gateway" / "sources.sqlite3")
    keys = {site: store.add(f"lis.{site.lower().replace('-', '')}", site)[1] for site in sites}
    gateway_port = free_port()
    children = [
        Child(f"rules-{n}", ["--log-level", "warning", "rules", "serve", *common, "--http-port", str(port),
                             *([] if args.dynamic else ["--instance-id", f"rules-{n}"])],
              folder / f"rules-{n}.log", port)
        for n, port in ((1, free_port()), (2, free_port()))
    ]  # fmt: skip
    gateway = Child("gateway", ["--log-level", "warning", "gateway", "serve", *common, "--port", str(gateway_port),
                                "--mllp-port", str(free_port()), "--data-dir", str(folder / "gateway")],
                    folder / "gateway.log", gateway_port)  # fmt: skip
    dashboard_port = free_port()
    dashboard = Child("dashboard", ["--log-level", "warning", "dashboard", "serve", *common, "--port",
                                    str(dashboard_port), "--data-dir", str(folder / "dashboard")],
                      folder / "dashboard.log", dashboard_port)  # fmt: skip
    everyone = [*children, gateway, dashboard]
    for child in everyone:
        child.start()
    failures: list[str] = []
    try:
        deadline = time.monotonic() + 180
        while not all([await c.healthy() for c in everyone]):
            if time.monotonic() > deadline or any(c.exited() is not None for c in everyone):
                raise SystemExit("the processes did not all become healthy: see their logs in " + str(folder))
            await asyncio.sleep(0.5)

        load = Load()
        latencies: list[tuple[float, float]] = []
        stop = asyncio.Event()
        started = time.perf_counter()
        driver = asyncio.create_task(
            drive(settings, f"http://127.0.0.1:{gateway_port}", keys, stream, args.rate, load, stop)
        )
        watcher = asyncio.create_task(watch_findings(settings, load, latencies))
        samples: list[Sample] = []
        recoveries: list[asyncio.Task[None]] = []
        kills = 0
        faults: list[float] = []
        broker_restarted = False
        broker_started = started
        restarting: asyncio.Task[None] | None = None
        broker_at = args.broker_restart_minute if args.broker_restart_minute is not None else args.minutes / 2
        next_kill = args.kill_every / 2  # as many kills in the first warm-up minutes as in the last
        next_sample = args.sample_seconds
        print(f"{'min':>5} {'sent':>9} {'lag':>7} {'p50 ms':>7} {'p99 ms':>7}  RSS MiB " +
              " ".join(f"{c.name:>10}" for c in everyone) + f" {'broker':>8}")  # fmt: skip
        window_start = 0

        def elapsed_min() -> float:
            return (time.perf_counter() - started) / 60

        while not driver.done() or elapsed_min() < args.minutes:
            await asyncio.sleep(0.5)
            minute = elapsed_min()
            for child in everyone:
                code = child.exited()
                if code is not None:
                    failures.append(f"{child.name} exited on its own with {code} at minute {minute:.1f}")
                    child.start()
            if args.kill_every and minute >= next_kill and minute < args.minutes:
                victim = children[kills % len(children)]
                victim.kill()
                victim.start()
                faults.append(time.perf_counter())
                kills += 1
                next_kill += args.kill_every
                print(f"      minute {minute:.1f}: SIGKILL {victim.name}, restarted")
                recoveries.append(asyncio.create_task(ready_again(victim, faults[-1])))
            if not broker_restarted and minute >= broker_at:
                await asyncio.to_thread(broker.kill)
                broker_restarted = True
                broker_started = time.perf_counter()
                faults.append(broker_started)
                # Restarted beside the sampling (kafka.sh waits until it serves: seconds to a minute).
                restarting = asyncio.create_task(asyncio.to_thread(broker.up))
                print(f"      minute {minute:.1f}: SIGKILL the broker, restarting")
            if minute * 60 >= next_sample:
                next_sample += args.sample_seconds
                window = [seconds for _, seconds in latencies[window_start:]]
                window_start = len(latencies)
                now = time.perf_counter()
                rss = {c.name: (c.incarnation, (now - c.started) / 60, rss_mib(c.pid) or 0.0)
                       for c in everyone if c.pid is not None}  # fmt: skip
                if broker.pid is not None:
                    rss["broker"] = (int(broker_restarted) + 1, (now - broker_started) / 60, rss_mib(broker.pid) or 0.0)
                sample = Sample(minute, rss, await lag_of(settings), quantile(window, 50), quantile(window, 99),
                                len(window), load.sent)  # fmt: skip
                samples.append(sample)
                print(_row(sample, [c.name for c in everyone]), flush=True)
            if minute >= args.minutes and not driver.done():
                stop.set()
        await driver
        if restarting is not None:
            await restarting  # raises if the broker did not come back

        print("draining: waiting until the rules group has consumed everything...")
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if await lag_of(settings) == 0:
                break
            await asyncio.sleep(1)
        await asyncio.sleep(3)  # the last committed findings reach the watcher
        watcher.cancel()
        for child in everyone:
            child.terminate()  # all at once: each may take seconds to end its transactions
        for child in everyone:
            code = child.stop()
            if code != 0:
                failures.append(f"{child.name} exited with {code} at SIGTERM")
        exact = await compare_with_replay(settings)
        verdict = report(args, samples, latencies, started, faults, load, kills, broker_restarted,
                         [c.name for c in everyone])  # fmt: skip
        print(f"findings exact: {'yes' if exact else 'NO'}")
        for failure in failures:
            print(f"FAILURE: {failure}")
        print(f"verdict: {'targets met' if verdict and exact and not failures else 'targets NOT met'}")
        return 0 if exact and not failures else 1
    finally:
        for child in everyone:
            child.terminate()
        for child in everyone:
            child.stop()
        broker.down()
        if not args.keep:
            shutil.rmtree(folder / "kafka", ignore_errors=True)


async def ready_again(victim: Child, killed: float) -> None:
    """Print how long after its SIGKILL the restarted instance is ready again (its /health: every
    partition it was assigned restored and open)."""
    incarnation = victim.incarnation
    while victim.incarnation == incarnation and time.perf_counter() - killed < 300:
        if await victim.healthy():
            print(f"      {victim.name} ready again {time.perf_counter() - killed:.1f} s after its SIGKILL")
            return
        await asyncio.sleep(0.1)


def _row(s: Sample, names: list[str]) -> str:
    def ms(v: float | None) -> str:
        return "-" if v is None else f"{v:,.0f}"

    mib = " ".join(f"{s.rss[n][2]:>10,.1f}" if n in s.rss else f"{'-':>10}" for n in names)
    broker = f"{s.rss['broker'][2]:>8,.0f}" if "broker" in s.rss else f"{'-':>8}"
    lag = "-" if s.lag is None else f"{s.lag:,}"
    return f"{s.minute:>5.1f} {s.sent:>9,} {lag:>7} {ms(s.p50_ms):>7} {ms(s.p99_ms):>7}          {mib} {broker}"


async def compare_with_replay(settings: KafkaSettings) -> bool:
    """The committed findings against the offline replay of the committed participant events."""
    replay = Replay(versions_for(STUDY))
    expected: list[bytes] = []
    events = 0
    async for record in read_to_end(settings, settings.topics.participant_events):
        try:
            event = parse_event(record.value or b"")
            events += 1
            expected += [encode(f) for f in replay.feed(event)]
        except ContractError:
            continue  # dead-lettered live too
    live = [record.value or b"" async for record in read_to_end(settings, settings.topics.deviations)]

    def canonical(raw: bytes) -> str:
        return json.dumps(json.loads(raw), sort_keys=True)

    live_keys, expected_keys = [canonical(v) for v in live], [canonical(v) for v in expected]
    duplicates = len(live_keys) - len(set(live_keys))
    missing = len(set(expected_keys) - set(live_keys))
    extra = len(set(live_keys) - set(expected_keys))
    print(f"findings: {len(live):,} committed, {len(expected):,} by the replay of the {events:,} committed events "
          f"({duplicates} duplicates, {missing} missing, {extra} extra)")  # fmt: skip
    return duplicates == missing == extra == 0 and len(live) == len(expected)


def report(
    args: argparse.Namespace,
    samples: list[Sample],
    latencies: list[tuple[float, float]],
    started: float,
    faults: list[float],
    load: Load,
    kills: int,
    broker_restarted: bool,
    names: list[str],
) -> bool:
    """Print the slopes and drift; whether they meet the targets."""
    warm = args.warm_up if args.warm_up is not None else min(10.0, args.minutes / 3)
    print(f"sent {load.sent:,} events ({load.via_gateway:,} through the gateway, {load.resent:,} sent again, "
          f"{load.gateway_refused:,} refused by the gateway); {kills} instance kills, "
          f"broker {'restarted once' if broker_restarted else 'not restarted'}")  # fmt: skip
    ok = True
    print(f"RSS slope after the first {warm:g} minutes and {args.settle:g} minutes after each (re)start (each "
          "incarnation its own line), MiB per hour:")  # fmt: skip
    for name in [*names, "broker"]:
        points = [
            (s.minute, s.rss[name][0], s.rss[name][2])
            for s in samples
            if name in s.rss and s.minute >= warm and s.rss[name][1] >= args.settle
        ]
        slope = slope_per_hour(points)
        judged = name != "broker"  # the JVM's heap grows to its -Xmx on its own terms
        meets = slope is not None and slope < TARGET_RSS_MIB_PER_HOUR
        if judged and not meets:
            ok = False
        figure = "too few samples" if slope is None else f"{slope:+,.1f}"
        note = "" if not judged else (" (target < 5: met)" if meets else " (target < 5: NOT met)")
        print(f"  {name:>10}: {figure}{note if judged else ' (not judged: the JVM)'}")
    if broker_restarted:
        # For insight, not judged: reconnecting after the broker's restart costs each process a step of
        # buffers once (a few MiB), which a least-squares line over 10-20 minutes reads as a trend.
        at = args.broker_restart_minute if args.broker_restart_minute is not None else args.minutes / 2
        restarts = {
            name: slope_per_hour([
                (s.minute, s.rss[name][0] + (10_000 if s.minute >= at else 0), s.rss[name][2])
                for s in samples
                if name in s.rss and s.minute >= warm and s.rss[name][1] >= args.settle
                and not 0 <= s.minute - at < args.settle
            ])
            for name in names
        }  # fmt: skip
        print("  the same, the broker's restart counted as a restart of every process (for insight, not judged): "
              + ", ".join(f"{n} {'-' if v is None else f'{v:+,.1f}'}" for n, v in restarts.items()))  # fmt: skip
    first = [s for t, s in latencies if (t - started) / 60 < warm]
    last = [s for t, s in latencies if (t - started) / 60 >= args.minutes - warm]
    p99_first, p99_last = quantile(first, 99), quantile(last, 99)
    if p99_first is None or p99_last is None:
        print("p99 drift: too few findings to say")
        return False
    drift = (p99_last - p99_first) / p99_first
    meets = abs(drift) <= TARGET_P99_DRIFT or p99_last <= p99_first
    ok = ok and meets

    def steady(window: list[tuple[float, float]]) -> list[float]:
        """Latencies of triggers sent more than a minute after every fault."""
        return [s for t, s in window if not any(0 <= t - s - f < 60 for f in faults)]

    first_steady = steady([(t, s) for t, s in latencies if (t - started) / 60 < warm])
    last_steady = steady([(t, s) for t, s in latencies if (t - started) / 60 >= args.minutes - warm])
    a, b = quantile(first_steady, 99), quantile(last_steady, 99)
    if a is not None and b is not None:
        print(f"event→finding p99 without the minute after each fault (for insight, not judged): first {a:,.0f} ms "
              f"({len(first_steady):,}), last {b:,.0f} ms ({len(last_steady):,})")  # fmt: skip
    print(f"event→finding p99: first {warm:g} min {p99_first:,.0f} ms ({len(first):,} findings), last {warm:g} min "
          f"{p99_last:,.0f} ms ({len(last):,}): drift {drift:+.0%} "
          f"(target within 20 %: {'met' if meets else 'NOT met'})")  # fmt: skip
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--rate", type=float, default=200, help="events per second")
    parser.add_argument("--kill-every", type=float, default=5, help="minutes between rules-instance SIGKILLs (0: none)")
    parser.add_argument("--dynamic", action="store_true",
                        help="rules instances without --instance-id (dynamic group members): a kill then costs a "
                        "rebalance after the session timeout, as before static membership")  # fmt: skip
    parser.add_argument("--broker-restart-minute", type=float, default=None,
                        help="when the broker is SIGKILLed and restarted (default: half-way)")  # fmt: skip
    parser.add_argument("--sample-seconds", type=float, default=60)
    parser.add_argument(
        "--warm-up",
        type=float,
        default=None,
        help="minutes left out of the RSS slopes and compared for p99 drift (default 10, or a third)",
    )
    parser.add_argument("--settle", type=float, default=2,
                        help="minutes after each (re)start of a process left out of its RSS slope")  # fmt: skip
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help="keep the broker's data in the run's folder")
    sys.exit(asyncio.run(run(parser.parse_args())))


if __name__ == "__main__":
    main()
