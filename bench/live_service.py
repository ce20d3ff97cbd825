"""The rules service as the live benchmark runs it: its input, its process, its metrics.

The events of the replay benchmark's simulated history (``events``, ``produce``), a ``rules
serve`` process (``start_service``, ``ready``, ``stop_service``), waiting for its group to have
consumed everything (``wait_consumed``), and what its Prometheus metrics say (``scrape``,
``batches``, ``histogram_quantile``, ``phases``). Used by ``bench/live.py``.
"""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
from itertools import islice
from pathlib import Path

from aiokafka import AIOKafkaProducer

from services.kafka import KafkaSettings, group_lag

ROOT = Path(__file__).resolve().parents[1]
HISTORY = ROOT / ".cache" / "bench" / "history-1000000-seed7.jsonl"
STUDY = "NCT06904729"


def events(n: int) -> list[tuple[bytes, bytes]]:
    """The first ``n`` events of the replay benchmark's simulated history, keyed by participant."""
    if not HISTORY.exists():
        subprocess.run(
            [sys.executable, "bench/replay.py", "--events", "1000000", "--repeat", "0"], cwd=ROOT, check=False
        )
    with HISTORY.open("rb") as f:
        lines = [line.rstrip(b"\n") for line in islice(f, n)]
    return [(json.loads(line)["participant_id"].encode(), line) for line in lines]


async def produce(settings: KafkaSettings, messages: list[tuple[bytes, bytes]]) -> None:
    producer = AIOKafkaProducer(**settings.client_kwargs(), acks="all", linger_ms=20,
                                max_batch_size=256 * 1024)  # fmt: skip
    await producer.start()
    try:
        for key, value in messages:
            await producer.send(settings.topics.participant_events, value, key=key)
        await producer.flush()
    finally:
        await producer.stop()


async def wait_consumed(settings: KafkaSettings, group: str, total: int) -> None:
    while True:
        lag = await group_lag(settings, group)
        if lag is not None and not any(lag.values()):
            return
        await asyncio.sleep(0.05)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def http_get(port: int, path: str) -> tuple[bool, bytes]:
    """(status 200, body) of a GET on the service's HTTP port."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
        response = await reader.read()
    finally:
        writer.close()
    head, _, body = response.partition(b"\r\n\r\n")
    return b" 200 " in head.split(b"\r\n", 1)[0] + b" ", body


async def ready(port: int, process: subprocess.Popen[bytes] | None = None) -> None:
    while True:
        if process is not None and process.poll() is not None:
            raise SystemExit(f"the rules service exited with {process.returncode} before it was ready")
        try:
            if (await http_get(port, "/health"))[0]:
                return
        except OSError:
            pass
        await asyncio.sleep(0.05)


async def scrape(port: int) -> dict[str, float]:
    """The service's metrics (Prometheus text), by series name with its labels."""
    _, body = await http_get(port, "/metrics")
    series = {}
    label = f'study="{STUDY}"'
    for line in body.decode().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            if "study=" in name and label not in name:
                continue  # another study's series (`rules serve` labels each with its study)
            name = name.replace(f",{label}", "").replace(f"{label},", "").replace(f"{{{label}}}", "")
            series[name] = float(value)
    return series


def batches(metrics: dict[str, float]) -> str:
    """What the service's batch histogram says: transactions, their size, their time."""
    count = metrics.get("trialguard_batch_seconds_count", 0.0)
    if not count:
        return "no transactions"
    mean = metrics["trialguard_batch_seconds_sum"] / count
    bounds = sorted(
        (float(name.split('le="')[1].rstrip('"}')), n)
        for name, n in metrics.items()
        if name.startswith("trialguard_batch_seconds_bucket") and "+Inf" not in name
    )
    p99 = next((f"≤ {bound * 1000:,.0f} ms" for bound, n in bounds if n >= 0.99 * count), "> 5 s")
    events = metrics.get("trialguard_events_processed_total", 0.0)
    return (f"{count:,.0f} transactions of {events / count:,.1f} events on average, {mean * 1000:,.0f} ms each "
            f"from the batch's first record to its commit (99 % {p99})")  # fmt: skip


def histogram_quantile(metrics: dict[str, float], name: str, q: float, labels: str = "") -> float | None:
    """The ``q`` quantile (0..1) of a Prometheus histogram in ``metrics``, interpolated linearly
    within its bucket (as PromQL's histogram_quantile does); None without observations."""
    buckets = []
    for key, n in metrics.items():
        if not key.startswith(f"{name}_bucket{{") or (labels and labels not in key):
            continue
        le = key.split('le="')[1].split('"')[0]
        buckets.append((float("inf") if le == "+Inf" else float(le), n))
    buckets.sort()
    if not buckets or not buckets[-1][1]:
        return None
    rank = q * buckets[-1][1]
    below, seen = 0.0, 0.0
    for bound, n in buckets:
        if n >= rank:
            if bound == float("inf"):
                return below
            return below + (bound - below) * (rank - seen) / max(n - seen, 1e-9)  # may pass the largest seen
        below, seen = bound, n
    return below


def largest_bucket(metrics: dict[str, float], name: str) -> float | None:
    """The upper bound of the highest bucket of a Prometheus histogram that holds an observation
    (``inf`` beyond the last bound); None without observations."""
    buckets = sorted(
        (float("inf") if (le := key.split('le="')[1].split('"')[0]) == "+Inf" else float(le), n)
        for key, n in metrics.items()
        if key.startswith(f"{name}_bucket{{")
    )
    highest, below = None, 0.0
    for bound, n in buckets:
        if n > below:
            highest = bound
        below = n
    return highest


def phases(metrics: dict[str, float]) -> str:
    """p99 of each timed phase of the service's transactions, the event loop's lag and full
    garbage collections (services/rules/timing.py), in milliseconds."""
    parts = []
    for phase in ("poll", "fold", "wait", "send", "round", "commit"):
        p99 = histogram_quantile(metrics, "trialguard_phase_seconds", 0.99, f'phase="{phase}"')
        largest = metrics.get(f'trialguard_phase_seconds_max{{phase="{phase}"}}', 0.0)
        if p99 is not None:
            parts.append(f"{phase} {min(p99, largest) * 1000:,.0f} (max {largest * 1000:,.0f})")
    lag = histogram_quantile(metrics, "trialguard_event_loop_lag_seconds", 0.99)
    if lag is not None:
        most = largest_bucket(metrics, "trialguard_event_loop_lag_seconds")
        parts.append(f"event-loop lag {lag * 1000:,.0f} (max ≤ {_ms(most)})")
    for name, what in (("gc_full", "full GCs"), ("gc_take_over", "full GCs at take-overs")):
        count = metrics.get(f"trialguard_{name}_seconds_count", 0.0)
        if count:
            parts.append(
                f"{count:,.0f} {what} of {metrics[f'trialguard_{name}_seconds_sum'] / count * 1000:,.0f} on average "
                f"(longest ≤ {_ms(largest_bucket(metrics, f'trialguard_{name}_seconds'))})"
            )
        else:
            parts.append(f"no {what}")
    return "p99 by phase, ms: " + ", ".join(parts)


def _ms(seconds: float | None) -> str:
    return "?" if seconds is None else f"{seconds * 1000:,.0f}"


def start_service(settings: KafkaSettings, port: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "services.cli", "--log-level", "warning", "rules", "serve",
         "--bootstrap-servers", settings.bootstrap_servers, "--study", STUDY, "--namespace", settings.namespace,
         "--http-port", str(port)],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def stop_service(service: subprocess.Popen[bytes]) -> None:
    service.terminate()
    service.wait()
