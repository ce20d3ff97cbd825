"""Which study a request works on, and the study-scoped objects every page and API call reads.

One dashboard serves several studies. Each study has a read model of its own (its own SQLite
file: a query cannot reach another study's rows whatever its WHERE clause) and a protocol of its
own. A request works on one study: the ``study`` query parameter when given, else the study the
user last switched to in this session, else the first served study the user has a role in.

``StudyScopeMiddleware`` notes the study asked for; ``scope_user`` (called by ``current_user``)
checks it against the user's roles and decides; ``StudyScoped`` objects (``app.state.store``,
``app.state.protocol``) then lead to that study's read model and protocol. A study the user has no
role in is answered like a study that does not exist: 404, so that nobody learns which other
studies this dashboard serves. Nothing is read before ``scope_user`` decided: a ``StudyScoped``
object used outside a decided request raises instead of guessing.
"""

from __future__ import annotations

import contextvars
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar
from urllib.parse import parse_qs

from fastapi import HTTPException, Request

from services.dashboard.roles import User

T = TypeVar("T")

NO_SUCH_STUDY = "no such study"
"""The answer for a study that is not served and for one the user has no role in alike."""

SESSION_KEY = "study"


class NoStudyChosenError(LookupError):
    """A study-scoped object was used where no request decided its study (a bug, not an input)."""


@dataclass
class RequestStudy:
    """The study one request asked for (``asked``) and the one it was given (``study``)."""

    asked: str | None
    study: str | None = None


_request: contextvars.ContextVar[RequestStudy | None] = contextvars.ContextVar("trialguard_study", default=None)


def current_study() -> str:
    """The study of the request being answered.

    Raises:
        NoStudyChosenError: outside a request, or before ``scope_user`` decided.
    """
    asked = _request.get()
    if asked is None or asked.study is None:
        raise NoStudyChosenError("no study chosen for this request")
    return asked.study


def current_study_or_none() -> str | None:
    """The request's study, or None (a page shown before login, an error before the study is known)."""
    asked = _request.get()
    return None if asked is None else asked.study


class StudyScoped(Generic[T]):
    """One object per study, used as the object of the request's study.

    ``app.state.store.reader()`` reads the read model of the study the request works on; code
    written for one study works unchanged, and cannot read another study's data by mistake.
    """

    def __init__(self, items: Mapping[str, T]) -> None:
        self.items = items

    def of(self, study_id: str) -> T:
        """The object of one study.

        Raises:
            KeyError: a study this dashboard does not serve.
        """
        return self.items[study_id]

    def __getattr__(self, name: str) -> Any:
        if name == "items":  # not set yet (during unpickling or before __init__)
            raise AttributeError(name)
        return getattr(self.items[current_study()], name)


class StudyScopeMiddleware:
    """Notes the ``study`` query parameter of each HTTP request for ``scope_user`` (pure ASGI, so
    the note is seen by the endpoint, its dependencies and the threads they run in)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        asked = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("study", [None])[-1]
        token = _request.set(RequestStudy(asked[:100] if asked else None))
        try:
            await self.app(scope, receive, send)
        finally:
            _request.reset(token)


def studies_of(request: Request, user: User) -> list[str]:
    """The served studies the user has a role in, in the order the dashboard serves them."""
    return [study for study in request.app.state.settings.served_studies if user.in_study(study) is not None]


def scope_user(request: Request, user: User, *, by_token: bool) -> User:
    """Decide the request's study and return the user as that study sees them.

    A study asked for explicitly by a page is remembered in the session (the study switcher);
    never by an API call or for a bearer token.

    Raises:
        HTTPException: 404 when the study asked for is not served or the user has no role in it,
            or when the user has a role in none of the served studies.
    """
    mine = studies_of(request, user)
    note = _request.get()
    if note is None:
        raise NoStudyChosenError("the app runs without StudyScopeMiddleware: no study can be decided")
    study: str | None
    if note.asked is not None:
        if note.asked not in mine:
            raise HTTPException(404, NO_SUCH_STUDY)
        study = note.asked
        if not by_token and not request.url.path.startswith("/api/"):
            # A page's choice (the switcher, a link) is remembered; an API call (a page's own
            # script pinned to its study) changes nothing for the other tabs.
            request.session[SESSION_KEY] = study
    else:
        remembered = None if by_token else request.session.get(SESSION_KEY)
        study = remembered if remembered in mine else (mine[0] if mine else None)
    if study is None:
        raise HTTPException(404, "you have no role in any study of this dashboard: ask an administrator")
    note.study = study
    scoped = user.in_study(study)
    if scoped is None:  # cannot happen: ``study`` is one of ``mine``
        raise HTTPException(404, NO_SUCH_STUDY)
    return scoped
