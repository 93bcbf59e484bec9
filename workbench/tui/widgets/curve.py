"""A curve over training steps on a scale shared with other curves, for comparing runs.

Textual's Sparkline scales each line to its own minimum and maximum, which
makes two runs' losses look alike whatever their values; a ``Curve`` takes its
step range and value range from outside, so curves drawn one above the other
line up in both.
"""

from __future__ import annotations

import math
from typing import Sequence

from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip
from textual.widget import Widget

BARS = " ▁▂▃▄▅▆▇█"


def resample(points: Sequence[tuple[int, float]], max_step: int, width: int) -> list[float | None]:
    """Mean value per column, column ``i`` covering steps ``(i/width, (i+1)/width] * max_step``; None where empty."""
    sums, counts = [0.0] * width, [0] * width
    for step, value in points:
        if not math.isfinite(value) or max_step <= 0:
            continue
        column = min(width - 1, max(0, math.ceil(step / max_step * width) - 1))
        sums[column] += value
        counts[column] += 1
    return [s / c if c else None for s, c in zip(sums, counts)]


def fill_gaps(values: list[float | None]) -> list[float | None]:
    """Carry each value forward over the empty columns after it, up to the last value (sparse metrics)."""
    last_index = max((i for i, v in enumerate(values) if v is not None), default=-1)
    filled, previous = [], None
    for index, value in enumerate(values):
        previous = value if value is not None else previous
        filled.append(previous if index <= last_index else None)
    return filled


class Curve(Widget, can_focus=False):
    """Block bars of ``points`` (step, value) between ``low`` and ``high``, steps 0..``max_step`` across the width."""

    DEFAULT_CSS = """
    Curve { height: 1; width: 1fr; }
    """

    def __init__(self, points: Sequence[tuple[int, float]], max_step: int, low: float, high: float,
                 colour: str = "", *, id: str | None = None):
        super().__init__(id=id)
        self.points, self.max_step, self.low, self.high = list(points), max_step, low, high
        self.colour = colour

    def render_line(self, y: int) -> Strip:
        width, height = self.size.width, self.size.height
        if width <= 0:
            return Strip.blank(0)
        style = Style.parse(self.colour) if self.colour and not self.app.no_color else Style()
        extent = (self.high - self.low) or 1.0
        levels = len(BARS) - 1
        row_from_bottom = height - 1 - y
        chars = []
        for value in fill_gaps(resample(self.points, self.max_step, width)):
            if value is None:
                chars.append(" ")
                continue
            ratio = min(max((value - self.low) / extent, 0.0), 1.0)  # values outside the scale are clipped
            filled = ratio * (levels * height - 1) + 1  # the lowest value still shows
            part = int(min(max(filled - row_from_bottom * levels, 0), levels))
            chars.append(BARS[part])
        return Strip([Segment("".join(chars), style)], width)
