"""The server-rendered pages: findings, finding detail, participant, overview, operations, users.

Jinja2 escapes every value that came from data; the only markup inserted unescaped is the SVG
that matplotlib made (it escapes the text it draws).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import RedirectResponse, Response
from markupsafe import Markup

from contracts import ReviewAction, ReviewStatus
from contracts.reviews import ALLOWED_FROM, MAX_REVIEW_TEXT_CHARS
from services.dashboard import queries
from services.dashboard.access import recent_changes
from services.dashboard.ageing import ageing
from services.dashboard.api import finding_for, list_params, site_scope
from services.dashboard.auth import CurrentUser, check_csrf, csrf_token
from services.dashboard.clocks import AWARENESS_NOTE, detail_context, with_clocks
from services.dashboard.notifier_status import notifier_status
from services.dashboard.queue_routes import nav_context
from services.dashboard.queues import assignees
from services.dashboard.review_forms import ACTIONS_BY_KIND, FIELDS, OTHER, TITLES, reasons_for
from services.dashboard.reviewing import ReviewError, ReviewRequest, take_review
from services.dashboard.roles import Action, Role, User, may_review
from services.dashboard.study_scope import current_study, current_study_or_none
from services.dashboard.timeline import cached_svg, timeline_of
from services.dashboard.times import time_mode
from services.kafka import group_lag, rules_group_id
from services.presentation.charts import findings_per_week_svg
from services.presentation.explanation import Explanation
from services.presentation.wording import label, unit_text, value_text

router = APIRouter(include_in_schema=False)

COLUMNS = (
    ("participant", "Participant"),
    ("site", "Site"),
    ("rule", "Rule"),
    ("kind", "Kind"),
    ("category", "Category"),
    ("severity", "Severity"),
    ("term", "Term"),
    ("reference", "Protocol reference"),
    ("occurred", "Event time (DVSTDTC)"),
    ("raised", "Raised at"),
    ("status", "Status"),
    ("days_open", "Days open"),
    ("assignee", "Assignee"),
)


def render(request: Request, user: User | None, template: str, status_code: int = 200, **context: Any) -> Response:
    templates = request.app.state.templates
    header = nav_context(request, user) if user is not None else {"study": current_study_or_none() or ""}
    context = header | context | {"user": user, "csrf": csrf_token(request)}
    return templates.TemplateResponse(request, template, context, status_code=status_code)  # type: ignore[no-any-return]


@router.get("/")
def home() -> Response:
    return RedirectResponse("/findings", status_code=303)


@router.get("/findings")
def findings_page(request: Request, user: CurrentUser, listed: Annotated[Any, Depends(list_params)]) -> Response:
    found, page = listed
    scope = site_scope(user)
    with request.app.state.store.reader() as db:
        newest = queries.newest_seq(db, scope)
        if not found.as_of:  # the snapshot this page and the pages after it show: arrivals wait
            found = dataclasses.replace(found, as_of=str(newest))
        rows = queries.finding_rows(db, found, page, scope)
        total = queries.finding_total(db, found, scope)
        table = queries.summary(db, found, scope)
        choices = {
            column: queries.distinct(db, column, scope) for column in ("rule_id", "category", "severity", "site_id")
        }
        arrived = queries.arrived(db, found, scope)
    keep = found.params() | page.params()
    with_clocks(rows, request.app.state.clocks, request.app.state.now())

    def sort_link(key: str) -> str:
        descending = not (page.sort == key and page.descending)
        sized = {"limit": str(page.limit)} if page.limit != queries.DEFAULT_LIMIT else {}
        return "?" + urlencode(found.params() | sized | {"sort": key, "order": "desc" if descending else "asc"})

    alerts_first_link = "?" + urlencode(
        found.params() | dataclasses.replace(page, alerts_first=not page.alerts_first).params()
    )

    def page_link(offset: int) -> str:
        return "?" + urlencode(keep | {"offset": str(offset), "limit": str(page.limit)})

    return render(
        request,
        user,
        "findings.html",
        rows=rows,
        total=total,
        summary=table,
        choices=choices,
        filter=found,
        page=page,
        columns=COLUMNS,
        sort_link=sort_link,
        page_link=page_link,
        newest_seq=newest,
        arrived=arrived,
        alerts_first_link=alerts_first_link,
        query=urlencode(found.params() | {"study": current_study()}),  # the page's scripts stay in its study
        csv_link="/api/findings.csv?" + urlencode(keep),
        xlsx_link="/api/findings.xlsx?" + urlencode(keep),
        view_query=urlencode(keep),
        statuses=[s.value for s in ReviewStatus],
    )


@router.get("/findings/{finding_id}")
def finding_page(request: Request, user: CurrentUser, finding_id: str, error: str = "", done: str = "") -> Response:
    return _finding_page(request, user, finding_id, error=error[:300], done=done[:40])


def _finding_page(request: Request, user: User, finding_id: str, status_code: int = 200, **extra: Any) -> Response:
    found = finding_for(request, user, finding_id)
    extra = {"failed": "", "asked": {}} | extra  # a refused review's form opens again with what was asked
    protocol = request.app.state.protocol
    status = ReviewStatus(found["status"])
    actions = [
        a
        for a in ReviewAction
        if status in ALLOWED_FROM[a]
        and a in ACTIONS_BY_KIND.get(found["kind"], ())
        and may_review(user, Action(a.value), found["site_id"])
    ]
    forms = [
        {"action": a, "title": TITLES[a], "fields": FIELDS[a], "reasons": reasons_for(a, found["kind"])}
        for a in actions
    ]
    try:
        parameters = protocol.parameters_of(found["rule_id"])
    except KeyError:  # a rule id this protocol version does not define (a hostile or foreign finding)
        parameters = ()
    parameters = [
        {
            "name": label(p.name),
            "value": show_value(p.value),
            "unit": unit_text(p.unit),
            "source": p.source,
            "assumption": p.assumption,
        }
        for p in parameters
    ]
    return render(
        request,
        user,
        "finding.html",
        status_code,
        f=found,
        why=found["explanation"],
        value_events=_value_events(request, found["explanation"]),
        label=label,
        value_text=value_text,
        actions=actions,
        forms=forms,
        other=OTHER,
        parameters=parameters,
        max_text=MAX_REVIEW_TEXT_CHARS,
        **detail_context(found, request.app.state.clocks, request.app.state.now()),
        # The study's users are listed only to whom may assign (not to a site user, say).
        assignees=assignees(request.app.state.users, current_study(), found["site_id"])
        if may_review(user, Action.ASSIGN, found["site_id"])
        else [],
        **extra,
    )


def _value_events(request: Request, why: Explanation) -> list[dict[str, Any]]:
    """The events that carried a value that broke a limit (the lab result, not the enrollment)."""
    if not why.sources:
        return []
    with request.app.state.store.reader() as db:
        return queries.events_by_id(db, [source.event_id for source in why.sources])


def show_value(value: Any) -> str:
    """A parameter's value for people: a visit window as "D7: day 7 ± 2", a pair as "name: value"."""
    if isinstance(value, tuple | list):
        if len(value) == 2 and isinstance(value[0], str) and not isinstance(value[1], tuple | list):
            return f"{value[0]}: {value[1]:g}" if isinstance(value[1], float) else f"{value[0]}: {value[1]}"
        return "; ".join(show_value(item) for item in value)
    if hasattr(value, "code") and hasattr(value, "day") and hasattr(value, "window_days"):
        return f"{value.code}: day {value.day} ± {value.window_days}"
    return str(value)


@router.post("/findings/{finding_id}/reviews")
async def review_form(
    request: Request,
    user: CurrentUser,
    finding_id: str,
    action: Annotated[str, Form(max_length=20)],
    csrf: Annotated[str, Form(max_length=128)] = "",
    comment: Annotated[str, Form(max_length=MAX_REVIEW_TEXT_CHARS)] = "",
    reason: Annotated[str, Form(max_length=MAX_REVIEW_TEXT_CHARS)] = "",
    assignee: Annotated[str, Form(max_length=64)] = "",
    reason_other: Annotated[str, Form(max_length=MAX_REVIEW_TEXT_CHARS)] = "",
) -> Response:
    check_csrf(request, csrf)
    app = request.app
    with app.state.store.reader() as db:
        try:
            await take_review(
                db,
                user,
                finding_id,
                ReviewRequest(action, comment, reason, assignee, reason_other),
                study_id=current_study(),
                publish=app.state.publish,
                live=app.state.live,
                wait_seconds=app.state.settings.review_wait_seconds,
                users=app.state.users,
            )
        except ReviewError as refused:
            if refused.status == 404:
                raise HTTPException(404, refused.message) from None
            return await asyncio.to_thread(
                _finding_page,
                request,
                user,
                finding_id,
                refused.status,
                error=refused.message,
                done="",
                failed=action[:20],
                asked={"comment": comment, "reason": reason, "assignee": assignee, "reason_other": reason_other},
            )
    return RedirectResponse(f"/findings/{finding_id}?done={action}", status_code=303)


@router.get("/participants/{participant_id}")
def participant_page(request: Request, user: CurrentUser, participant_id: str) -> Response:
    timeline = timeline_of(request.app, participant_id, time_mode(request))
    if timeline is None or site_scope(user) not in (None, timeline["site_id"]):
        raise HTTPException(404, "no such participant")
    return render(request, user, "participant.html", t=timeline, svg=Markup(timeline["svg"]))  # noqa: S704 - matplotlib output


@router.get("/overview")
def overview_page(request: Request, user: CurrentUser) -> Response:
    scope = site_scope(user)
    important = queries.FindingFilter(kind="deviation", severity="important", status="unresolved")
    alerts = queries.FindingFilter(kind="alert", status="unresolved")
    with request.app.state.store.reader() as db:
        context: dict[str, Any] = {
            "by_site": queries.counts_by(db, "site_id", scope),
            "by_rule": queries.counts_by(db, "rule_id", scope),
            "important": queries.finding_rows(db, important, queries.Page(limit=20), scope),
            "important_total": queries.finding_total(db, important, scope),
            "alerts": queries.finding_rows(db, alerts, queries.Page(limit=20), scope),
            "alerts_total": queries.finding_total(db, alerts, scope),
            "ageing": ageing(db, scope, request.app.state.now()),
            "awareness_note": AWARENESS_NOTE,
        }
        with_clocks(context["alerts"], request.app.state.clocks, request.app.state.now())
        weeks = queries.per_week(db, scope)
        # The chart counts findings: it changes with new ones only. The key keeps "every site"
        # (None) apart from a site that happens to be named "None".
        counted = queries.finding_total(db, queries.FindingFilter(), scope)
        drawn = json.dumps([current_study(), scope, queries.newest_seq(db, scope), counted])
    svg = cached_svg(("overview", drawn), lambda: findings_per_week_svg(weeks, title="Findings per week, by category"))
    chart = Markup(svg)  # noqa: S704 - matplotlib's SVG, its text escaped
    return render(request, user, "overview.html", chart=chart, **context)


@router.get("/operations")
async def operations_page(request: Request, user: CurrentUser) -> Response:
    if user.role is Role.SITE:
        raise HTTPException(403, "the operations view shows every site's input: not for site users")
    app = request.app
    settings = app.state.settings.kafka_of(current_study())
    try:
        rules_lag = await asyncio.wait_for(group_lag(settings, rules_group_id(settings)), 10)
    except Exception:  # the page still shows the rest when the broker cannot say
        rules_lag = None
    own = f"{settings.namespace}.{settings.study_id}."  # this study's topics only
    read_model_lag = {topic: n for topic, n in (await app.state.consumer.lag()).items() if topic.startswith(own)}

    def load() -> dict[str, Any]:
        with app.state.store.reader() as db:
            return {
                "dead_letters": queries.dead_letters(db),
                "dead_letter_total": queries.dead_letter_count(db),
                "newest_event_time": queries.meta(db, "newest_event_time"),
                "access_changes": recent_changes(db),
            }

    context = await asyncio.to_thread(load)
    notifier = await notifier_status(app.state.settings.notifier_url, settings.study_id)
    return render(
        request,
        user,
        "operations.html",
        rules_lag=rules_lag,
        read_model_lag=read_model_lag,
        notifier=notifier,
        **context,
    )
