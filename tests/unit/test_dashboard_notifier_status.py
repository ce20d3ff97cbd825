"""The notifier's deliveries and dead letters on the dashboard's operations page, read over HTTP
from a real notifier app (a real store with a dead letter) served on 127.0.0.1: shown escaped,
only the page's own study, only to roles that see operations; a notifier that is down or answers
nonsense leaves the page standing."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from services.kafka import KafkaSettings
from services.notifier.app import create_app as notifier_app
from services.notifier.consumer import FindingsConsumer
from services.notifier.delivery import Deliverer
from services.notifier.settings import DeliverySettings, SmtpSettings
from services.notifier.store import NotifierStore
from tests.processes import free_port
from tests.unit.test_dashboard_app import HOSTILE, _client, app  # noqa: F401 - fixture
from tests.unit.test_notifier_matching import _notice, _subscription
from tests.unit.test_read_model import _finding

OTHER_STUDY = "NCT00000002"


class Served:
    """An ASGI app served by uvicorn in a thread on 127.0.0.1 and a free port; requests recorded."""

    def __init__(self, asgi: Any) -> None:
        self.requests: list[str] = []
        self.port = free_port()

        async def recording(scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] == "http":
                self.requests.append(scope["path"] + "?" + scope["query_string"].decode())
            await asgi(scope, receive, send)

        config = uvicorn.Config(recording, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="fake-notifier", daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert self.thread.is_alive(), f"could not serve on port {self.port}"
            assert time.monotonic() < deadline, "the server did not start in 30 s"
            time.sleep(0.05)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


@pytest.fixture
def notifier(tmp_path: Path) -> Iterator[Served]:
    """The notifier's own HTTP app on a store holding, for this study, one delivered finding and one
    dead letter whose error text is hostile markup, and for another study one dead letter."""
    store = NotifierStore(tmp_path / "notifier.sqlite3")
    ours = _subscription()
    theirs = _subscription("mona", subscription_id="sub-other", study_id=OTHER_STUDY)
    store.add_subscription(ours)
    store.add_subscription(theirs)
    store.enqueue([(ours, _notice(_finding(1))), (ours, _notice(_finding(2))), (theirs, _notice(_finding(3)))])
    delivered, dead, other = sorted(store.due(10, now=time.time() + 1), key=lambda d: d.finding_id)
    store.delivered(delivered)
    store.failed(dead, HOSTILE, None)
    store.failed(other, "HTTP 500 of the other study", None)
    consumer = FindingsConsumer(KafkaSettings("127.0.0.1:1", "NCT06904729", "unit"), store, dict, lambda: None)
    served = Served(notifier_app(store, [consumer], Deliverer(store, SmtpSettings(), DeliverySettings())))
    yield served
    served.stop()
    store.close()


def _with_notifier(app: Any, url: str | None) -> None:  # noqa: F811
    app.state.settings = dataclasses.replace(app.state.settings, notifier_url=url)


def _section(html: str) -> str:
    return html.split('data-testid="notifier"')[1].split("</section>")[0]


def test_the_operations_page_shows_the_notifiers_counts_and_dead_letters_escaped(app: Any, notifier: Served) -> None:  # noqa: F811
    _with_notifier(app, notifier.url)
    page = _client(app, "auditor").get("/operations")
    assert page.status_code == 200
    section = _section(page.text)
    assert 'data-testid="notifier-delivered">1<' in section
    assert 'data-testid="notifier-dead">1<' in section
    assert "sub-mona" in section
    dead = section.split('data-testid="notifier-dead-letters"')[1]
    assert HOSTILE not in page.text  # the error text is shown as text, never as markup
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in dead
    assert "other study" not in page.text  # another study's dead letters are not shown
    assert "sub-other" not in page.text
    assert notifier.requests == ["/operations?study=NCT06904729"]


def test_a_site_user_does_not_get_the_notifiers_operations(app: Any, notifier: Served) -> None:  # noqa: F811
    _with_notifier(app, notifier.url)
    page = _client(app, "site").get("/operations")
    assert page.status_code == 403
    assert "sub-mona" not in page.text
    assert notifier.requests == []


def test_an_unreachable_notifier_is_said_and_the_page_still_renders(app: Any) -> None:  # noqa: F811
    _with_notifier(app, f"http://127.0.0.1:{free_port()}")  # nothing listens there
    page = _client(app, "monitor").get("/operations")
    assert page.status_code == 200
    assert "The notifier is unreachable (ConnectError)" in _section(page.text)
    assert 'data-testid="access-log"' in page.text


@pytest.mark.parametrize(
    "answer",
    [
        PlainTextResponse("<script>alert(1)</script>", status_code=500),
        PlainTextResponse("<html>not json</html>"),
        Response('["a list"]', media_type="application/json"),
    ],
)
def test_a_notifier_answering_nonsense_is_said_and_the_page_still_renders(app: Any, answer: Response) -> None:  # noqa: F811
    async def operations(request: Request) -> Response:
        return answer

    impostor = Served(Starlette(routes=[Route("/operations", operations)]))
    try:
        _with_notifier(app, impostor.url)
        page = _client(app, "monitor").get("/operations")
    finally:
        impostor.stop()
    assert page.status_code == 200
    assert "The notifier is unreachable" in _section(page.text)
    assert HOSTILE not in page.text


def test_without_a_notifier_url_the_page_says_it_is_not_configured(app: Any) -> None:  # noqa: F811
    page = _client(app, "monitor").get("/operations")
    assert page.status_code == 200
    assert "The notifier is not configured" in _section(page.text)
