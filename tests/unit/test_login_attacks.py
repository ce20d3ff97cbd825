"""Password guessing against a real dashboard server on 127.0.0.1 (uvicorn, real sockets): forged
X-Forwarded-For, a burst of concurrent guesses, a victim's name under attack, the log of failures,
an unauthenticated huge body. The throttle's clock is moved by hand; nothing sleeps."""

from __future__ import annotations

import asyncio
import contextlib
import re
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Literal

import httpx
import pytest
from argon2 import PasswordHasher
from structlog.testing import capture_logs

from services.dashboard.app import create_app
from services.dashboard.settings import DashboardSettings
from services.dashboard.throttle import LoginThrottle
from services.dashboard.users import UserStore
from services.http import HttpServer, serve_asgi
from services.http_limits import HttpLimits
from services.kafka import KafkaSettings
from tests.access import recording

PASSWORD = "correct horse battery"


class CountingHasher(PasswordHasher):
    """A cheap argon2 hasher that counts how many passwords it verified."""

    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=8, parallelism=1)
        self.verified = 0
        self._lock = threading.Lock()

    def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:
        with self._lock:
            self.verified += 1
        return super().verify(hash, password)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Dashboard:
    def __init__(self, http: HttpServer, hasher: CountingHasher, clock: Clock) -> None:
        self.http, self.hasher, self.clock = http, hasher, clock
        self.url = f"http://127.0.0.1:{http.port}"

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, follow_redirects=False, timeout=30)


@contextlib.asynccontextmanager
async def dashboard(tmp_path: Path, **limits: Any) -> AsyncIterator[Dashboard]:
    settings = DashboardSettings(KafkaSettings("127.0.0.1:1", "NCT06904729", "unit"), tmp_path, "127.0.0.1", 0)
    hasher = CountingHasher()
    users = UserStore(tmp_path / "users.sqlite3", hasher=hasher)
    users.add("monitor", "monitor", PASSWORD)
    app = create_app(settings, users)
    clock = Clock()
    app.state.login_throttle = LoginThrottle(clock=clock)
    # No lifespan: the login needs no broker.
    http = await serve_asgi(app, "127.0.0.1", 0, limits=HttpLimits(max_body_bytes=64 * 1024, **limits))
    try:
        hasher.verified = 0
        yield Dashboard(http, hasher, clock)
    finally:
        await http.stop()


async def csrf(client: httpx.AsyncClient) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', (await client.get("/login")).text)
    assert found is not None
    return found.group(1)


async def login(
    client: httpx.AsyncClient, token: str, name: str, password: str, forwarded_for: str | None = None
) -> httpx.Response:
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    return await client.post("/login", data={"name": name, "password": password, "csrf": token}, headers=headers)


async def test_a_forged_x_forwarded_for_does_not_escape_the_per_address_limit(tmp_path: Path) -> None:
    async with dashboard(tmp_path) as site, site.client() as attacker:
        token = await csrf(attacker)
        codes = [
            (await login(attacker, token, f"user{n}", "wrong password", forwarded_for=f"198.51.100.{n}")).status_code
            for n in range(12)
        ]
    assert codes == [401] * 5 + [429] * 7
    assert site.hasher.verified == 5


async def test_forty_concurrent_wrong_passwords_are_not_all_verified(tmp_path: Path) -> None:
    async with dashboard(tmp_path) as site, site.client() as attacker:
        token = await csrf(attacker)
        answers = await asyncio.gather(*(login(attacker, token, "monitor", f"guess {n}") for n in range(40)))
    codes = sorted(a.status_code for a in answers)
    assert site.hasher.verified <= 5, "each attempt is reserved before its password is checked"
    assert codes.count(401) == site.hasher.verified
    assert codes.count(429) == 40 - site.hasher.verified
    assert all(0 < int(a.headers["retry-after"]) <= 60 for a in answers if a.status_code == 429)


async def test_strangers_guessing_a_name_never_lock_its_owner_out(tmp_path: Path) -> None:
    # Behind a trusted proxy, so that strangers and the owner come from addresses of their own.
    async with (
        dashboard(tmp_path, forwarded_allow_ips="127.0.0.1") as site,
        site.client() as owners_browser,
        site.client() as new_browser,
        site.client() as attacker,
    ):
        owner_token = await csrf(owners_browser)
        assert (await login(owners_browser, owner_token, "monitor", PASSWORD, "10.0.0.7")).status_code == 303
        owner_token = await csrf(owners_browser)
        new_token = await csrf(new_browser)
        attacker_token = await csrf(attacker)
        for round_ in range(30):  # a long campaign from many addresses, waiting out every delay
            answer = await login(attacker, attacker_token, "monitor", f"guess {round_}", f"203.0.113.{round_}")
            if answer.status_code == 429:
                assert int(answer.headers["retry-after"]) <= 61, "a name's delay is capped at a minute"
                site.clock.now += int(answer.headers["retry-after"])
        # The owner's own browser is not delayed at all by strangers' guesses...
        assert (await login(owners_browser, owner_token, "monitor", PASSWORD, "10.0.0.7")).status_code == 303
        # ... and from a new browser the owner waits at most a minute, then gets in.
        answer = await login(new_browser, new_token, "monitor", "x", "10.0.0.8")
        assert answer.status_code in (401, 429)
        site.clock.now += 61
        assert (await login(new_browser, new_token, "monitor", PASSWORD, "10.0.0.8")).status_code == 303


async def test_a_failed_login_is_logged_with_name_and_address_never_the_password(tmp_path: Path) -> None:
    async with dashboard(tmp_path) as site, site.client() as attacker:
        token = await csrf(attacker)
        with capture_logs() as logs:
            await login(attacker, token, "monitor", "hunter2 hunter2")
            await login(attacker, token, "not a name; rm -rf", "hunter2 hunter2")
    failed = [e for e in logs if e["event"] == "login_failed"]
    assert [(e["user"], e["client"]) for e in failed] == [("monitor", "127.0.0.1"), ("<not a user name>", "127.0.0.1")]
    assert "hunter2" not in repr(logs)


async def test_an_unauthenticated_200_mb_post_is_refused_413_before_any_login_work(tmp_path: Path) -> None:
    async with dashboard(tmp_path) as site:
        for path in (b"/login", b"/api/findings/x/reviews"):
            reader, writer = await asyncio.open_connection("127.0.0.1", site.http.port)
            writer.write(b"POST " + path + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 200000000\r\n\r\n")
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 20)
            assert head.startswith(b"HTTP/1.1 413 ")
            writer.close()
    assert site.hasher.verified == 0


@pytest.mark.parametrize("password", ["aaaaaaaaaaaa", " " * 12, "password1234", "newbienewbie1"])
async def test_a_new_user_cannot_choose_a_guessable_password_either(tmp_path: Path, password: str) -> None:
    async with dashboard(tmp_path) as site, site.client() as newbie:
        users: UserStore = UserStore(tmp_path / "users.sqlite3", hasher=site.hasher)
        users.add("newbie", "monitor", recorder=recording([]))
        link = users.issue_password_link("newbie", recording([]), new_user=True)
        form = {"token": link, "password": password, "confirm": password, "csrf": await csrf(newbie)}
        answer = await newbie.post("/set-password", data=form)
    assert answer.status_code == 422
    assert "too easy to guess" in answer.text
    assert users.authenticate("newbie", password) is None
