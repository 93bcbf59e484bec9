"""One metric of a run: its name, its latest value and a sparkline of its recent history."""

from __future__ import annotations

import math
from typing import Sequence

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Label, Sparkline


def mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


class MetricLine(Horizontal):
    """``D loss   0.4413 ▂▃▅▇▆▅▃``; the sparkline shows one point per column and scrolls as points arrive."""

    DEFAULT_CSS = """
    MetricLine { height: 1; }
    MetricLine > Label { width: 20; }
    MetricLine > Sparkline { width: 1fr; }
    """

    def __init__(self, label: str, *, id: str | None = None):
        super().__init__(id=id)
        self.label = label
        self.value = Label(f"{label[:10]:<10} -", markup=False)
        self.spark = Sparkline([], summary_function=mean)

    def compose(self) -> ComposeResult:
        yield self.value
        yield self.spark

    def show(self, values: Sequence[float]) -> None:
        """Draw the newest values that fit; NaN and infinities are left out of the curve."""
        finite = [v for v in values if math.isfinite(v)]
        last = values[-1] if values else None
        self.value.update(f"{self.label[:10]:<10} {_fmt(last)}")
        self.spark.data = finite[-(self.spark.size.width or 60):]


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if not math.isfinite(value):
        return str(value)
    return f"{value:.4f}" if abs(value) < 1000 else f"{value:.4g}"
