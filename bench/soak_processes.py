"""The processes of a soak run (bench/soak.py): a broker of the run's own, the rules service
instances, the lab gateway and the dashboard, each a child process logging to a file, and how
their memory is read."""

from __future__ import annotations

import asyncio
import importlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

try:  # psutil when it is there; /proc otherwise (Linux)
    psutil: Any = importlib.import_module("psutil")
except ImportError:  # pragma: no cover - depends on the environment
    psutil = None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mib(pid: int) -> float | None:
    """Resident set of process ``pid`` in MiB (None: gone)."""
    try:
        if psutil is not None:
            return float(psutil.Process(pid).memory_info().rss) / 2**20
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except Exception:  # gone between the listing and the read
        return None
    return None


class Broker:
    """A single-node Kafka of the run's own (scripts/kafka.sh) on free ports, in ``folder``."""

    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        self.folder = folder
        self.env = {**os.environ, "KAFKA_PORT": str(self.port), "KAFKA_CONTROLLER_PORT": str(free_port()),
                    "KAFKA_DIR": str(folder)}  # fmt: skip

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        try:
            return int((self.folder / "kafka.pid").read_text())
        except (OSError, ValueError):
            return None

    def up(self) -> None:
        subprocess.run([str(ROOT / "scripts" / "kafka.sh"), "up"], env=self.env, check=True,
                       stdout=subprocess.DEVNULL)  # fmt: skip

    def down(self) -> None:
        subprocess.run([str(ROOT / "scripts" / "kafka.sh"), "down"], env=self.env, check=False,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip

    def kill(self) -> None:
        """SIGKILL the broker, as a crash would, and wait until it is gone (kafka.sh detached it:
        init reaps it; ``up`` before then would find it still running)."""
        pid = self.pid
        if pid is None:
            return
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)
        raise RuntimeError(f"broker {pid} is still there 60 s after SIGKILL")


class Child:
    """A ``trialguard …`` command as a child process, logging to ``log``; ``incarnation`` counts starts."""

    def __init__(self, name: str, command: list[str], log: Path, http_port: int) -> None:
        self.name = name
        self.command = command
        self.log = log
        self.http_port = http_port
        self.proc: subprocess.Popen[bytes] | None = None
        self.incarnation = 0
        self.terminated = False
        self.started = 0.0
        """When the current incarnation started (``time.perf_counter``)."""

    def start(self) -> Child:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "services.cli", *self.command], cwd=ROOT,
                                         stdout=out, stderr=subprocess.STDOUT)  # fmt: skip
        self.incarnation += 1
        self.started = time.perf_counter()
        self.terminated = False
        return self

    @property
    def pid(self) -> int | None:
        return None if self.proc is None else self.proc.pid

    def exited(self) -> int | None:
        """The exit code if it ended (on its own or killed), else None."""
        return None if self.proc is None else self.proc.poll()

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def terminate(self) -> None:
        """SIGTERM once, without waiting (``stop`` waits): a second one would cut its graceful
        stop short (the servers exit on the second signal)."""
        if self.proc is not None and self.proc.poll() is None and not self.terminated:
            self.proc.terminate()
            self.terminated = True

    def stop(self) -> int:
        """SIGTERM and wait (60 s, then SIGKILL): its exit code."""
        if self.proc is None:
            return 0
        self.terminate()
        try:
            return self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    async def healthy(self) -> bool:
        """Whether its /health answers 200."""
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", self.http_port)
        except OSError:
            return False
        try:
            writer.write(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            head = await reader.readline()
        except OSError:
            return False
        finally:
            writer.close()
        return b" 200 " in head
