"""The timeline's markers: one linked, titled SVG group per event or finding, none hiding another.

Each mark is ``<g id="event-…"><a href="…" class="mark" aria-label="…"><title>…</title>`` + the
marker + (when it fits) its own label ``</a></g>``: a keyboard user reaches every marker with Tab, a
mouse user sees the ``<title>`` tooltip, a screen reader reads the name, and a label is always
inside the group of the event it describes.

Two rules keep the picture honest:
- ``spread`` moves markers that would overlap in a lane to free slots above and below the lane's
  line (and, when those are full, a marker's width later): coincident events are all visible.
- ``Marks.draw`` draws a label only where it covers no marker and no label drawn before it. A
  label left out is still the marker's tooltip; a label drawn never sits over another event's
  marker, where it would be read as that event's.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import cast

import matplotlib
from matplotlib.artist import Artist
from matplotlib.backend_bases import RendererBase
from matplotlib.backends.backend_svg import RendererSVG
from matplotlib.markers import MarkerStyle
from matplotlib.path import Path
from matplotlib.text import Text
from matplotlib.transforms import Affine2D, Bbox, Transform

SLOTS = (0.0, 0.21, -0.21, 0.42, -0.42)
"""Vertical positions in a lane (lane units; lanes are 1 apart, about 38 pt), in the order they
are used: 0.21 lane is 8 pt, the widest marker."""
LABEL_FONT_PT = 6.5
EM_PER_CHAR = 0.72
"""Upper estimate of a character's width in the label font (DejaVu Sans capitals and digits are
about 0.63-0.72 em), so an estimated label box covers the drawn one."""
BUCKET_PX = 64.0


@dataclass(frozen=True)
class Style:
    """How a marker looks: matplotlib marker code, size in points, face and edge colours."""

    marker: str
    size: float
    face: str
    edge: str | None = None


@dataclass(frozen=True)
class Mark:
    """One event or finding at (x: date number, y: lane row).

    ``gid`` is the SVG group id, ``url`` where the marker links to, ``title`` its tooltip and
    accessible name, ``label`` the short text drawn beside it when it fits.
    """

    x: float
    y: float
    gid: str
    style: Style
    url: str = ""
    title: str = ""
    label: str = ""


def spread(marks: Iterable[Mark], width: float) -> list[Mark]:
    """The marks with those that would overlap in their lane moved apart.

    Args:
        marks: the marks, any order.
        width: the distance along x (date-number units) closer than which two markers overlap.

    Returns:
        The same marks in the same order; in each lane, marks are placed by time into the first
        slot of ``SLOTS`` free for ``width``; when none is, into the slot freed first, moved along
        x until it is free.
    """
    marks = list(marks)
    by_lane: dict[float, list[int]] = defaultdict(list)
    for index, mark in enumerate(marks):
        by_lane[mark.y].append(index)
    placed = list(marks)
    for lane, indices in by_lane.items():
        free_from = dict.fromkeys(SLOTS, float("-inf"))  # slot -> x from which it is free
        for index in sorted(indices, key=lambda i: (marks[i].x, marks[i].gid)):
            mark = marks[index]
            slot = next((s for s in SLOTS if free_from[s] <= mark.x), None)
            x = mark.x
            if slot is None:
                slot = min(SLOTS, key=lambda s: free_from[s])
                x = free_from[slot]
            free_from[slot] = x + width
            placed[index] = replace(mark, x=x, y=lane + slot)
    return placed


class Marks(Artist):
    """Every marker of the timeline, each in an SVG group of its own with its link and title.

    One Line2D per point gives groups through ``gid``, but costs about 0.5 ms a point to build and
    draw: 300 events would take a page view over 100 ms. This artist draws the points with the
    renderer's own ``draw_markers`` (as Line2D does), opening a group named by the point's id
    around each. Marks are drawn in the order given (later ones on top).
    """

    def __init__(self, marks: Sequence[Mark], *, label_offset: Transform, zorder: float) -> None:
        super().__init__()
        self._marks = marks
        self._label_offset = label_offset
        self.set_zorder(zorder)

    def draw(self, renderer: RendererBase) -> None:
        if not self.get_visible():
            return
        # Saving as SVG wraps the SVG renderer in a MixedModeRenderer that forwards to it.
        inner = getattr(renderer, "_renderer", renderer)
        svg = inner if isinstance(inner, RendererSVG) else None
        labelled = self._labels_that_fit(renderer)
        for index, mark in enumerate(self._marks):
            renderer.open_group("mark", gid=mark.gid)
            if svg is not None and mark.url:
                svg.writer.start("a", attrib={"href": mark.url, "class": "mark", "aria-label": mark.title})  # type: ignore[no-untyped-call]
                svg.writer.element("title", text=mark.title)  # type: ignore[no-untyped-call]
            self._draw_marker(mark, renderer)
            if index in labelled:
                text = Text(mark.x, mark.y, mark.label, fontsize=LABEL_FONT_PT, va="center", clip_on=True)
                text.set_figure(self.figure)
                text.set_transform(self._label_offset)
                if self.axes is not None:
                    text.set_clip_box(self.axes.bbox)
                text.draw(renderer)
            if svg is not None and mark.url:
                svg.writer.end("a")  # type: ignore[no-untyped-call]
            renderer.close_group("mark")
        self.stale = False

    def _labels_that_fit(self, renderer: RendererBase) -> set[int]:
        """The marks whose label covers no marker and no label placed before it, in time order.

        A label's box is estimated generously (``EM_PER_CHAR`` of the font size per character):
        measuring each text with the font would triple the time a timeline takes to draw, and an
        estimate too large only leaves out a label that would have fitted.
        """
        trans = self.get_transform()
        em = cast(float, renderer.points_to_pixels(LABEL_FONT_PT))
        taken = _BoxIndex()
        for mark in self._marks:
            taken.add(self._marker_box(mark, trans, renderer))
        limit = self.axes.bbox if self.axes is not None else None
        fits = set()
        for index in sorted(range(len(self._marks)), key=lambda i: self._marks[i].x):
            mark = self._marks[index]
            if not mark.label:
                continue
            x, y = self._label_offset.transform((mark.x, mark.y))
            box = Bbox.from_extents(x, y - 0.7 * em, x + EM_PER_CHAR * em * len(mark.label), y + 0.7 * em)
            if limit is not None and (box.x1 > limit.x1 or box.y1 > limit.y1 or box.y0 < limit.y0):
                continue  # a clipped label would be half a word
            if not taken.overlaps(box):
                fits.add(index)
                taken.add(box)
        return fits

    def _draw_marker(self, mark: Mark, renderer: RendererBase) -> None:
        style = mark.style
        gc = renderer.new_gc()
        if self.axes is not None:  # as Line2D does: nothing outside the axes
            gc.set_clip_rectangle(self.axes.bbox)
        gc.set_foreground(style.edge or style.face)
        gc.set_linewidth(0.5 if style.edge else 0)
        marker = MarkerStyle(style.marker)
        pixels = cast(float, renderer.points_to_pixels(style.size))  # a float for a float
        marker_trans = marker.get_transform() + Affine2D().scale(pixels)
        face = matplotlib.colors.to_rgb(style.face)
        renderer.draw_markers(gc, marker.get_path(), marker_trans, Path([(mark.x, mark.y)]), self.get_transform(), face)
        gc.restore()

    @staticmethod
    def _marker_box(mark: Mark, trans: Transform, renderer: RendererBase) -> Bbox:
        """The marker's square in display pixels."""
        half = cast(float, renderer.points_to_pixels(mark.style.size)) / 2
        x, y = trans.transform((mark.x, mark.y))
        return Bbox.from_extents(x - half, y - half, x + half, y + half)


class _BoxIndex:
    """Boxes in display pixels, bucketed by x so that a look-up compares only nearby boxes."""

    def __init__(self) -> None:
        self._buckets: dict[int, list[Bbox]] = defaultdict(list)

    def add(self, box: Bbox) -> None:
        for bucket in range(int(box.x0 // BUCKET_PX), int(box.x1 // BUCKET_PX) + 1):
            self._buckets[bucket].append(box)

    def overlaps(self, box: Bbox) -> bool:
        return any(
            box.overlaps(other)
            for bucket in range(int(box.x0 // BUCKET_PX), int(box.x1 // BUCKET_PX) + 1)
            for other in self._buckets.get(bucket, ())
        )
