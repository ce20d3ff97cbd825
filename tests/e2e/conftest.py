"""Browser tests: Debian's Chromium driven by Playwright, against a real broker, the rules service
and the dashboard as real processes.

``playwright install`` cannot download browsers here: the tests launch ``/usr/bin/chromium``
(``.ci/run`` installs it with apt). Screenshots go to ``.cache/screenshots/`` (or
TRIALGUARD_SCREENSHOTS).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from services.kafka import KafkaSettings
from tests.integration.kafka_support import keyed, publish, wait_until_consumed
from tests.processes import ROOT, HttpServiceProcess, ServiceProcess

CHROMIUM = os.environ.get("TRIALGUARD_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(os.environ.get("TRIALGUARD_SCREENSHOTS", ROOT / ".cache" / "screenshots"))
COHORT = {"participants": 40, "seed": 11}
PASSWORD = "correct horse battery"
WAIT_MS = 60_000

T = TypeVar("T")


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine from a synchronous test (Playwright's sync API owns this thread)."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def wait_until(condition: Any, what: str, timeout: float = 90.0) -> Any:
    """Poll ``condition`` until it returns something truthy; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.2)
    return result


class DashboardProcess(HttpServiceProcess):
    """``trialguard dashboard serve`` as a child process, on a free loopback port."""

    command = ("dashboard", "serve")

    def api(self, path: str, token: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
        """Call the JSON API with a bearer token; (status, decoded body)."""
        request = urllib.request.Request(
            self.url + path,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            method="GET" if body is None else "POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")


@dataclass
class Stack:
    """Broker topics of this module, the rules service, the dashboard and its users."""

    settings: KafkaSettings
    rules: ServiceProcess
    dashboard: DashboardProcess
    tokens: dict[str, str] = field(default_factory=dict)
    """Bearer token of each user (user name = role name, the site user is ``site``)."""

    def api(self, path: str, user: str = "data-manager", body: dict[str, Any] | None = None) -> tuple[int, Any]:
        return self.dashboard.api(path, self.tokens[user], body)

    def findings(self, query: str = "", user: str = "data-manager") -> dict[str, Any]:
        status, body = self.api(f"/api/findings?limit=1000{'&' if query else ''}{query}", user)
        assert status == 200, body
        return dict(body)

    def publish(self, lines: list[bytes]) -> None:
        run(publish(self.settings, keyed(lines)))

    def wait_until_in_dashboard(self) -> int:
        """Wait until the rules service consumed everything and the dashboard shows every finding."""
        run(wait_until_consumed(self.settings, self.rules.check_alive))
        from tests.integration.kafka_support import findings as committed_findings

        expected = len(run(committed_findings(self.settings)))
        wait_until(lambda: self.findings()["total"] == expected, f"the dashboard to show {expected} findings")
        return expected


def _users(settings: KafkaSettings, data_dir: Path) -> dict[str, str]:
    """Add one user per role (named after it; the site user belongs to GZ-02); their API tokens.

    Each is added as an operator does (a set-password link, the change on the access log), then
    given the test password by ``users passwd`` from standard input.
    """
    broker = ["--bootstrap-servers", settings.bootstrap_servers, "--namespace", settings.namespace]
    cli = [sys.executable, "-m", "services.cli", "users"]
    tokens = {}
    for name, role, site in (
        ("monitor", "monitor", None),
        ("data-manager", "data-manager", None),
        ("site", "site", "GZ-02"),
        ("auditor", "auditor", None),
        ("admin", "admin", None),
    ):
        add = [*cli, "add", name, "--role", role, "--data-dir", str(data_dir), *broker]
        subprocess.run(add + (["--site", site] if site else []), check=True, cwd=ROOT, capture_output=True)
        passwd = [*cli, "passwd", name, "--data-dir", str(data_dir), *broker]
        subprocess.run(passwd, input=f"{PASSWORD}\n".encode(), check=True, cwd=ROOT, capture_output=True)
        token = subprocess.run(
            [*cli, "token", name, "--data-dir", str(data_dir), *broker], check=True, cwd=ROOT, capture_output=True
        )
        tokens[name] = token.stdout.decode().strip().splitlines()[-1]
    return tokens


@pytest.fixture(scope="module")
def stack(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A simulated cohort through the rules service into the dashboard, for one test module."""
    folder = tmp_path_factory.mktemp("e2e")
    settings = KafkaSettings(kafka_bootstrap, "NCT06904729", f"e2e-{uuid.uuid4().hex[:10]}")
    events = folder / "cohort.jsonl"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "services.cli",
            "simulate",
            "--participants",
            str(COHORT["participants"]),
            "--seed",
            str(COHORT["seed"]),
            "--out",
            str(events),
        ],
        check=True,
        cwd=ROOT,
        capture_output=True,
    )
    rules = ServiceProcess(settings, folder / "rules.log").start()
    dashboard = DashboardProcess(settings, folder / "dashboard", folder / "dashboard.log")
    tokens = _users(settings, dashboard.data_dir)
    built = Stack(settings, rules, dashboard, tokens)
    try:
        built.publish(events.read_bytes().splitlines())
        dashboard.start()
        built.wait_until_in_dashboard()
        yield built
    finally:
        if dashboard.proc is not None:
            dashboard.stop()
        rules.stop(signal.SIGKILL)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    # Module scope: Playwright's sync API runs its own event loop in this thread while it is open,
    # and the asyncio tests that follow need the thread to themselves.
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh browser context (no cookies) and page per test."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.set_default_timeout(WAIT_MS)
    try:
        yield context.new_page()
    finally:
        context.close()


def login(page: Page, stack: Stack, user: str, path: str = "/findings") -> None:
    """Log in through the form as ``user`` and land on ``path``."""
    page.goto(stack.dashboard.url + path)
    page.fill("input[name=name]", user)
    page.fill("input[name=password]", PASSWORD)
    page.click("form[action='/login'] button[type=submit]")
    page.wait_for_url(lambda url: "/login" not in url)


def screenshot(page: Page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=False)
    return path
