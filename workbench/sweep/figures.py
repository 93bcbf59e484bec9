"""The pictures of a comparison: the objective's curves (matplotlib) and a contact sheet of sample grids."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on a headless box
    import matplotlib.pyplot as plt

    return plt


def plot_curves(report: dict[str, Any], path: Path) -> Path | None:
    """One line per setting (the mean over its seeds), the seeds' spread (min to max) as a band; None if no values."""
    settings = [s for s in report["settings"] if any(r["curve"] for r in s["runs"])]
    if not settings:
        return None
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(8, 4.8), dpi=110)
    for setting in settings:
        steps = sorted({step for r in setting["runs"] for step, _ in r["curve"]})
        values = [[v for r in setting["runs"] for at, v in r["curve"] if at == step] for step in steps]
        means = [sum(v) / len(v) for v in values]
        line, = axes.plot(steps, means, marker="o", markersize=3, label=setting["label"])
        axes.fill_between(steps, [min(v) for v in values], [max(v) for v in values], color=line.get_color(),
                          alpha=0.2, linewidth=0)
    metric = report["metric"]
    axes.set_xlabel("training step")
    axes.set_ylabel(f"{metric} ({'lower' if report['lower_is_better'] else 'higher'} is better)")
    axes.set_title(f"{metric} over training: mean of the seeds, band = their spread")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return path


def sheet_step(report: dict[str, Any]) -> int | None:
    """The latest step at which every run has a sample grid, or None when they share none."""
    sets = [set(r["samples"]) for s in report["settings"] for r in s["runs"]]
    shared = set.intersection(*sets) if sets else set()
    return max(shared) if shared else None


def contact_sheet(report: dict[str, Any], path: Path) -> Path | None:
    """Each setting's sample grids (one per seed) side by side at the same step, labelled; None if no grids."""
    rows = [s for s in report["settings"] if any(r["samples"] for r in s["runs"])]
    if not rows:
        return None
    step = sheet_step(report)
    columns = max(len(s["runs"]) for s in rows)
    plt = _pyplot()
    figure, axes = plt.subplots(len(rows), columns, figsize=(2.6 * columns, 3.0 * len(rows)), dpi=110,
                                squeeze=False, layout="constrained")
    for row, setting in zip(axes, rows):
        for cell, run in zip(row, setting["runs"] + [None] * columns):
            cell.axis("off")
            if run is None or not run["samples"]:
                continue
            at = step if step is not None else max(run["samples"])
            cell.imshow(plt.imread(run["samples"][at]), cmap="gray")
            cell.set_title(f"{setting['label']}\nseed {run['seed']} · step {at:,}", fontsize=8)
    title = f"samples at step {step:,}" if step is not None else "each run's latest samples"
    figure.suptitle(title, fontsize=10)
    _save_sheet(figure, path)
    plt.close(figure)
    return path


def _save_sheet(figure, path: Path) -> None:
    """Save the sheet as an 8-bit grey PNG when every grid is grey (MNIST-like data: a quarter of the bytes of
    the RGBA matplotlib writes, the same pixels), in colour otherwise."""
    import numpy as np
    from PIL import Image

    figure.canvas.draw()
    pixels = np.asarray(figure.canvas.buffer_rgba())[..., :3]
    grey = bool((pixels == pixels[..., :1]).all())
    Image.fromarray(pixels[..., 0] if grey else pixels).save(path, optimize=True)
