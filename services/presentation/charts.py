"""The pictures of the dashboard and the audit report as pure functions: plain data in, inline SVG text out.

Both are drawn by matplotlib (never by hand) on a bare ``Figure`` with the SVG canvas: pyplot
keeps global figure state, and the web app renders in threads. Text stays text
(``svg.fonttype: none``) so matplotlib's XML writer escapes whatever data-provided text a label
holds, and ``svg.hashsalt`` makes the generated ids, hence the whole SVG, the same for the same
input. Every event and every finding is one ``<g id="event-…">`` / ``<g id="finding-…">`` element
so the page can find, highlight or link it.
"""

from __future__ import annotations

import datetime as dt
import io
import threading
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from xml.sax.saxutils import quoteattr

import matplotlib
from matplotlib import dates as mdates
from matplotlib import transforms
from matplotlib.backends.backend_svg import FigureCanvasSVG
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from contracts import Category
from services.presentation.marks import Mark, Marks, Style, spread
from services.presentation.schedule import VisitWindowSpan, field, visit_windows

__all__ = [
    "CATEGORIES",
    "SAFETY_ALERT",
    "VisitWindowSpan",
    "findings_per_week_svg",
    "participant_timeline_svg",
    "visit_windows",
]

SAFETY_ALERT = "SAFETY ALERT"
CATEGORIES: tuple[str, ...] = (*(c.value for c in Category), SAFETY_ALERT)
"""The categories of the weekly chart, in stacking order: DVCAT, then safety alerts."""

# rc_context swaps process-wide rcParams: two threads entering and leaving it interleaved could
# restore the defaults under each other mid-render and break determinism, so renders take turns.
_RENDER = threading.Lock()
# No Date (it would change every render) and no generator banner: the SVG is a pure function of its input.
_NO_METADATA: dict[str, str | None] = {"Date": None, "Creator": None, "Format": None, "Type": None}

WIDTH_IN = 750 / 72  # 750 pt = 1000 CSS px: the width of the dashboard's content column
LANE_IN = 0.55
MARGIN_IN = 1.0  # room for the date axis and the legend
MARK_GAP_PT = 9  # the widest marker (8 pt) and a point of air

# Lanes, top to bottom. Withdrawal of consent sits with the other ways of leaving the study.
LANES: tuple[tuple[str, frozenset[str]], ...] = (
    ("Registration & consent", frozenset({"ParticipantRegistered", "ConsentSigned"})),
    (
        "Screening",
        frozenset(
            {
                "ScreeningLabResulted",
                "LabResultCorrected",
                "LabResultRetracted",
                "KidneyBiopsyReported",
                "DiseaseActivityScored",
                "SLEClassificationScored",
                "MedicalHistoryRecorded",
                "ConcomitantMedicationRecorded",
                "PerformanceStatusAssessed",
                "EligibilityConfirmed",
            }
        ),
    ),
    (
        "Enrollment & treatment",
        frozenset({"ParticipantEnrolled", "LeukapheresisPerformed", "LymphodepletionAdministered", "CarTInfused"}),
    ),
    ("Visits", frozenset({"FollowUpVisitCompleted"})),
    ("Adverse events", frozenset({"AdverseEventReported"})),
    ("Relapse & withdrawal", frozenset({"RelapseReported", "ParticipantWithdrawn", "ConsentWithdrawn"})),
)
OTHER_LANE = "Other"  # an event type newer than this module still shows, rather than vanishing
FINDINGS_LANE = "Findings"
WATERMARK = "ClockTicked"  # event time only, nothing happened to the participant
_LANE_OF = {event_type: name for name, types in LANES for event_type in types}
_LANE_COLOUR = {
    "Registration & consent": "#4c72b0",
    "Screening": "#8172b3",
    "Enrollment & treatment": "#2ca02c",
    "Visits": "#1f77b4",
    "Adverse events": "#8c564b",
    "Relapse & withdrawal": "#555555",
    OTHER_LANE: "#999999",
}
_EVENT_STYLE = {lane: Style("o", 6, colour) for lane, colour in _LANE_COLOUR.items()}
# (colour, marker, legend text) per finding kind: shape as well as colour, for colour-blind readers.
_FINDING_STYLE = {
    "alert": ("#d62728", "^", "safety alert"),
    "important": ("#ff7f0e", "D", "important deviation"),
    "minor": ("#e6b800", "o", "minor deviation"),
}
_CATEGORY_COLOUR = {
    Category.ELIGIBILITY.value: "#4c72b0",
    Category.INFORMED_CONSENT.value: "#8172b3",
    Category.STUDY_PROCEDURE.value: "#55a868",
    Category.INVESTIGATIONAL_PRODUCT.value: "#ff7f0e",
    Category.VISIT_SCHEDULE.value: "#e6b800",
    SAFETY_ALERT: "#d62728",
}


def participant_timeline_svg(
    events: Iterable[object],
    findings: Iterable[object],
    visit_windows: Iterable[object],
    *,
    title: str = "",
) -> str:
    """One participant's events, findings and visit windows on a date axis.

    Times are drawn at their wall-clock time in their own UTC offset: the rules count days by
    each event's own calendar date, so a visit inside its window is drawn inside its shading.

    Args:
        events: mappings or objects with ``event_id``, ``event_type``, ``occurred_at`` (aware
            datetime) and optionally ``label`` (short text drawn beside the marker when it fits),
            ``link`` (the marker's href) and ``tooltip`` (its ``<title>`` and accessible name);
            any text, it is escaped. ClockTicked watermarks are skipped.
        findings: mappings or objects with ``finding_id``, ``rule_id``, ``kind`` ("deviation"
            or "alert"), ``severity`` ("important", "minor" or None), ``occurred_at``, and
            optionally ``link`` and ``tooltip`` as for events.
        visit_windows: mappings or objects with ``visit``, ``start`` and ``end``; a date end is
            included (its whole day is shaded), a datetime end is exact. ``visit_windows()``
            gives these.
        title: an optional heading, also the SVG's accessible name.

    Returns:
        An inline ``<svg>`` element (no XML declaration, no DOCTYPE) with ``role="group"``; each
        marker with a link is a focusable ``<a>`` (see ``services.presentation.marks``).
    """
    shown = [e for e in events if field(e, "event_type") != WATERMARK]
    found = list(findings)
    windows = list(visit_windows)
    label = title or "Participant timeline"
    if not shown and not found:
        return _message_svg("No events", label)

    lanes = [name for name, _ in LANES]
    if any(field(e, "event_type") not in _LANE_OF for e in shown):
        lanes.append(OTHER_LANE)
    lanes.append(FINDINGS_LANE)
    row = {name: len(lanes) - 1 - i for i, name in enumerate(lanes)}  # first lane at the top

    left, right = 1.7 / WIDTH_IN, 0.98
    marks: list[Mark] = []
    for e in shown:
        lane = _LANE_OF.get(str(field(e, "event_type")), OTHER_LANE)
        marks.append(_event_mark(e, row[lane], _EVENT_STYLE[lane]))
    for f in found:
        marks.append(_finding_mark(f, row[FINDINGS_LANE]))
    low, high = _time_range([m.x for m in marks], windows)
    # Markers closer than the widest marker would hide each other: spread them in their lane.
    per_point = (high - low) / (WIDTH_IN * 72 * (right - left))  # date-number units per point
    marks = spread(marks, MARK_GAP_PT * per_point)

    with _rendering():
        fig = Figure(figsize=(WIDTH_IN, MARGIN_IN + LANE_IN * len(lanes)))
        FigureCanvasSVG(fig)
        height = fig.get_figheight()
        fig.subplots_adjust(left=left, right=right, bottom=0.5 / height, top=1 - 0.5 / height)
        ax = fig.add_subplot()
        ax.set_xlim(low, high)

        for w in windows:
            start, end = _window_bounds(w)
            ax.axvspan(start, end, color="#1f77b4", alpha=0.12, linewidth=0, zorder=0)
            ax.text(start, row["Visits"] + 0.3, str(field(w, "visit", "")), fontsize=6, color="#1f77b4", clip_on=True)

        # Each label sits a few points right of its own marker, whatever the zoom of the dates,
        # inside that marker's group; Marks leaves out a label that would cover another marker.
        beside = transforms.offset_copy(ax.transData, fig=fig, x=6, y=0, units="points")
        events_first = sorted(marks, key=lambda m: m.gid.startswith("finding-"))  # findings on top
        ax.add_artist(Marks(events_first, label_offset=beside, zorder=3))

        ax.set_ylim(-0.6, len(lanes) - 0.4)
        ax.set_yticks(range(len(lanes)), list(reversed(lanes)))
        ax.tick_params(axis="y", length=0, labelsize=8)
        ax.tick_params(axis="x", labelsize=8)
        ax.grid(axis="y", color="#e5e5e5", linewidth=0.8)
        ax.set_axisbelow(True)
        # The x values are matplotlib date numbers already (converted once, not per artist).
        locator = mdates.AutoDateLocator(maxticks=10)  # type: ignore[no-untyped-call]
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))  # type: ignore[no-untyped-call]
        for side in ("top", "right", "left"):
            ax.spines[side].set_visible(False)
        legend = [
            Line2D([], [], marker=m, linestyle="none", color=c, markeredgecolor="black", markeredgewidth=0.5, label=t)
            for c, m, t in _FINDING_STYLE.values()
        ]
        ax.legend(handles=legend, loc="lower left", bbox_to_anchor=(0, 1), ncol=3, fontsize=7, frameon=False)
        if title:
            ax.set_title(title, loc="right", fontsize=9)
        # A group, not an image: an image's children are hidden from assistive technology, and
        # these markers are links a keyboard and a screen reader must reach.
        return _svg(fig, label, role="group")


def findings_per_week_svg(rows: Iterable[tuple[dt.date, str, int]], *, title: str = "") -> str:
    """Findings per ISO week, stacked by category.

    Args:
        rows: ``(week_start, category, count)``; week_start is any day of the week (it is moved
            to the Monday of its ISO week), category a DVCAT value or "SAFETY ALERT". Rows for
            the same week and category add up; weeks without rows show as empty bars.
        title: an optional heading, also the SVG's accessible name.

    Returns:
        An inline ``<svg>`` element (no XML declaration, no DOCTYPE) with ``role="img"``.
    """
    counts: dict[str, dict[dt.date, int]] = defaultdict(lambda: defaultdict(int))
    for week, category, count in rows:
        counts[str(category)][week - dt.timedelta(days=week.weekday())] += int(count)
    label = title or "Findings per ISO week by category"
    weeks_seen = {w for per_week in counts.values() for w, n in per_week.items() if n}
    if not weeks_seen:
        return _message_svg("No findings", label)

    first, last = min(weeks_seen), max(weeks_seen)
    weeks = [first + dt.timedelta(weeks=i) for i in range((last - first).days // 7 + 1)]
    # Known categories in a fixed order, unknown ones after them: a new DVCAT still shows.
    categories = [c for c in CATEGORIES if c in counts] + sorted(set(counts) - set(CATEGORIES))

    with _rendering():
        fig = Figure(figsize=(WIDTH_IN, 4.0))
        FigureCanvasSVG(fig)
        fig.subplots_adjust(left=0.07, right=0.98, bottom=0.14, top=0.8)
        ax = fig.add_subplot()
        positions = list(range(len(weeks)))
        bottom = [0] * len(weeks)
        for category in categories:
            heights = [counts[category].get(w, 0) for w in weeks]
            ax.bar(
                positions, heights, bottom=bottom, width=0.8, label=category,
                color=_CATEGORY_COLOUR.get(category, "#999999"), linewidth=0,
            )  # fmt: skip
            bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
        step = max(1, -(-len(weeks) // 12))  # at most about 12 week labels, whatever the span
        ax.set_xticks(positions[::step], [_iso_week(w) for w in weeks[::step]], fontsize=8)
        ax.set_xlim(-0.6, len(weeks) - 0.4)
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))  # counts are whole
        ax.tick_params(axis="y", labelsize=8)
        ax.set_ylabel("findings", fontsize=8)
        ax.grid(axis="y", color="#e5e5e5", linewidth=0.8)
        ax.set_axisbelow(True)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
        ax.legend(loc="lower left", bbox_to_anchor=(0, 1.02), ncol=3, fontsize=7, frameon=False)
        if title:
            ax.set_title(title, loc="right", fontsize=9)
        return _svg(fig, label)


def _event_mark(event: object, lane_y: int, style: Style) -> Mark:
    """An event's marker: its link and tooltip as given, or a tooltip of its type, label and time."""
    at = field(event, "occurred_at")
    text = str(field(event, "label", "") or "")
    default = " · ".join(p for p in (str(field(event, "event_type")), text, _time_text(at)) if p)
    title = str(field(event, "tooltip", "") or default)
    if text not in title:  # the words drawn must be part of the link's accessible name (WCAG 2.5.3)
        title = f"{text} · {title}"
    return Mark(
        _num(at), lane_y, f"event-{field(event, 'event_id')}", style,
        url=str(field(event, "link", "") or ""), title=title, label=text,
    )  # fmt: skip


def _finding_mark(finding: object, lane_y: int) -> Mark:
    """A finding's marker, shaped and coloured by kind and severity, labelled with its rule id."""
    colour, marker, kind = _FINDING_STYLE[_finding_style(finding)]
    at = field(finding, "occurred_at")
    rule = str(field(finding, "rule_id", ""))
    default = " · ".join((rule, kind, _time_text(at)))
    return Mark(
        _num(at), lane_y, f"finding-{field(finding, 'finding_id')}", Style(marker, 8, colour, "black"),
        url=str(field(finding, "link", "") or ""), title=str(field(finding, "tooltip", "") or default), label=rule,
    )  # fmt: skip


def _time_text(at: dt.datetime | dt.date) -> str:
    return at.isoformat(sep=" ", timespec="minutes") if isinstance(at, dt.datetime) else at.isoformat()


def _finding_style(finding: object) -> str:
    if field(finding, "kind") == "alert":
        return "alert"
    # An unrecognised severity is drawn as important: overstating beats hiding a deviation.
    return "minor" if field(finding, "severity") == "minor" else "important"


def _num(at: dt.datetime | dt.date) -> float:
    """A time as a matplotlib date number of its wall-clock time in its own offset.

    matplotlib would move an aware time to UTC, and a visit early in the morning east of UTC
    would then be drawn the day before, outside the window the rules found it in.
    """
    if not isinstance(at, dt.datetime):
        at = dt.datetime.combine(at, dt.time())
    return float(mdates.date2num(at.replace(tzinfo=None)))  # type: ignore[no-untyped-call]


def _window_bounds(window: object) -> tuple[float, float]:
    start, end = field(window, "start"), field(window, "end")
    if not isinstance(end, dt.datetime):
        end = end + dt.timedelta(days=1)  # a date end is the last day included: shade to its midnight
    return _num(start), _num(end)


def _time_range(times: Sequence[float], windows: Sequence[object]) -> tuple[float, float]:
    """The events' span, stretched to the end of the next visit window still open, and padded."""
    low, high = min(times), max(times)
    upcoming = [e for _, e in map(_window_bounds, windows) if e > high]
    if upcoming:
        high = min(upcoming)
    pad = max((high - low) * 0.03, 1.0)  # date numbers count days
    return low - pad, high + pad


def _iso_week(day: dt.date) -> str:
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def _message_svg(message: str, label: str) -> str:
    """A small picture saying there is nothing to draw."""
    with _rendering():
        fig = Figure(figsize=(WIDTH_IN, 0.6))
        FigureCanvasSVG(fig)
        fig.text(0.5, 0.5, message, ha="center", va="center", fontsize=10, color="#666666")
        return _svg(fig, label)


@contextmanager
def _rendering() -> Iterator[None]:
    """One render at a time, with text kept as text and ids from a fixed salt."""
    with _RENDER, matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "trialguard"}):
        yield


def _svg(fig: Figure, label: str, role: str = "img") -> str:
    """The figure as an inline SVG element with an accessible name.

    Must run inside the rc_context: the SVG backend reads svg.fonttype and svg.hashsalt while saving.
    """
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata=_NO_METADATA)
    text = buf.getvalue()
    # HTML inlines the <svg> element only: the XML declaration and DOCTYPE before it must go.
    text = text[text.index("<svg") :]
    # The one attribute insertion on matplotlib's output: role and name for assistive technology.
    return text.replace("<svg ", f"<svg role={quoteattr(role)} aria-label={quoteattr(label)} ", 1)
