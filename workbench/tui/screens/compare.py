"""Two or more runs' curves one above the other, on shared step and value scales."""

from __future__ import annotations

import math

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Label, Static

from workbench.modeling.metrics import METRIC_KEYS, METRIC_LABELS
from workbench.rundir.directory import RunDir
from workbench.rundir.events import iter_events
from workbench.tui.widgets.curve import Curve

PALETTE = ("#4ea1ff", "#ff9f43", "#2ecc71", "#e056fd", "#f6e58d", "#ff6b6b")
Points = list[tuple[int, float]]


def run_curves(run: RunDir) -> dict[str, Points]:
    """Every metric of a run as (step, value) points: the four losses and any eval metrics."""
    curves: dict[str, Points] = {key: [] for key in METRIC_KEYS}
    for event in iter_events(run.events):
        step = event.get("step")
        if not isinstance(step, int):
            continue
        if event["type"] == "metrics":
            values = {key: event.get(key) for key in METRIC_KEYS}
        elif event["type"] == "eval":
            values = event.get("metrics") or {}
        else:
            continue
        for key, value in values.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                curves.setdefault(str(key), []).append((step, float(value)))
    return curves


def scale(values: list[float]) -> tuple[float, float]:
    """The value range to draw: the 1st to 99th percentile, so one spike does not flatten every curve."""
    ordered = sorted(values)
    if len(ordered) < 100:
        return ordered[0], ordered[-1]
    return ordered[len(ordered) // 100], ordered[-1 - len(ordered) // 100]


class CompareScreen(Screen):
    """One block per metric; one coloured curve per run in each block."""

    BINDINGS = [Binding("escape", "back", "Runs")]

    def __init__(self, runs: list[RunDir]):
        super().__init__()
        self.runs = runs

    def compose(self) -> ComposeResult:
        names = ", ".join(run.path.name for run in self.runs)
        yield Static(f"Comparing {len(self.runs)} runs: {names}", id="compare-title", markup=False)
        yield VerticalScroll(id="compare-body")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.load()

    @work(thread=True, exclusive=True)
    def load(self) -> None:
        curves = [run_curves(run) for run in self.runs]
        self.app.call_from_thread(self._show, curves)

    def _show(self, curves: list[dict[str, Points]]) -> None:
        body = self.query_one("#compare-body", VerticalScroll)
        keys = list(METRIC_KEYS) + sorted({k for c in curves for k in c} - set(METRIC_KEYS))
        max_step = max((p[0] for c in curves for pts in c.values() for p in pts), default=0)
        width = max(len(run.path.name) for run in self.runs)
        widgets = []
        for key in keys:
            values = [v for c in curves for _, v in c.get(key, ())]
            if not values:
                continue
            low, high = scale(values)
            clipped = " (outliers clipped)" if (low, high) != (min(values), max(values)) else ""
            widgets.append(Label(f"{METRIC_LABELS.get(key, key)}  {low:.4g} .. {high:.4g}{clipped}  over steps "
                                 f"0 .. {max_step:,}", classes="compare-metric", markup=False))
            for index, (run, curve) in enumerate(zip(self.runs, curves)):
                points = curve.get(key, [])
                last = f"{points[-1][1]:.4f}" if points else "-"
                colour = PALETTE[index % len(PALETTE)]
                label = Label(f"{run.path.name[:24]:<{min(width, 24)}} {last:>8}", markup=False,
                              classes="compare-run")
                if not self.app.no_color:
                    label.styles.color = colour
                widgets.append(Horizontal(label, Curve(points, max_step, low, high, colour), classes="compare-row"))
        if not widgets:
            widgets.append(Static("These runs have no metrics yet.", markup=False))
        body.mount_all(widgets)

    def action_back(self) -> None:
        self.dismiss()
