"""What the benchmark prints and writes: the ratio lines, both loss curves, both sample grids."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from workbench.bench.runner import WorkloadResult
from workbench.engine.samples import save_grid

CLASSIC_COLOUR, ENGINE_COLOUR = (200, 60, 40), (30, 100, 200)


def ratio_line(result: WorkloadResult, device: str) -> str:
    """``NAME: classic 2,013 images/s, ganbench 5,432 images/s, ratio 2.70x on cpu (...)`` (medians)."""
    return (f"{result.workload.name}: classic {result.classic_rate:,.1f} images/s, ganbench "
            f"{result.engine_rate:,.1f} images/s, ratio {result.ratio:.2f}x on {device}")


def late_means(result: WorkloadResult) -> dict[str, float]:
    """Mean D and G loss of each path over the second half of the run (the equal-quality numbers)."""
    rows = result.curves()
    late = rows[len(rows) // 2:] or rows
    names = ("classic_d", "classic_g", "ganbench_d", "ganbench_g")
    return {name: sum(r[i + 1] for r in late) / len(late) for i, name in enumerate(names)}


def quality_line(result: WorkloadResult) -> str:
    means = late_means(result)
    return (f"  losses over the second half: classic D {means['classic_d']:.3f} G {means['classic_g']:.3f}; "
            f"ganbench D {means['ganbench_d']:.3f} G {means['ganbench_g']:.3f}")


def table(results: list[WorkloadResult], device: str) -> str:
    """The results as a Markdown table, ready for docs/performance.md: median rates, the median of the
    per-repeat ratios and (with repeats) each repeat's ratio."""
    lines = ["| workload | classic script | batch | timed steps | classic images/s | ganbench images/s | ratio |",
             "|---|---|---|---|---|---|---|"]
    for r in results:
        each = f" ({', '.join(f'{x:.2f}' for x in r.ratios)})" if len(r.ratios) > 1 else ""
        lines.append(f"| {r.workload.name} | {r.workload.script} | {r.batch_size} | {r.steps} | "
                     f"{r.classic_rate:,.1f} | {r.engine_rate:,.1f} | {r.ratio:.2f}x{each} |")
    return "\n".join(lines) + f"\n\ndevice: {device}"


def to_dict(result: WorkloadResult) -> dict:
    """One workload's numbers for ``--json`` and ``results.json``."""
    return {"workload": result.workload.name, "script": result.workload.script, "dataset": result.dataset,
            "batch_size": result.batch_size, "warmup": result.warmup, "steps": result.steps,
            "classic_images_per_s": [round(t.images_per_s, 2) for t in result.classic],
            "ganbench_images_per_s": [round(t.images_per_s, 2) for t in result.engine],
            "classic_median": round(result.classic_rate, 2), "ganbench_median": round(result.engine_rate, 2),
            "ratios": [round(r, 3) for r in result.ratios], "ratio": round(result.ratio, 3),
            "late_losses": {k: round(v, 4) for k, v in late_means(result).items()}}


def write_outputs(result: WorkloadResult, folder: Path) -> list[Path]:
    """Write ``losses.csv``, ``losses.png``, ``classic-samples.png`` and ``ganbench-samples.png`` into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = result.curves()
    csv_path = folder / "losses.csv"
    with open(csv_path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["step", "classic_d_loss", "classic_g_loss", "ganbench_d_loss", "ganbench_g_loss"])
        writer.writerows([r[0], *(f"{v:.6f}" for v in r[1:])] for r in rows)
    written = [csv_path, plot_curves(rows, folder / "losses.png", result.workload.name)]
    for path, samples in result.samples.items():
        grid = folder / f"{path}-samples.png"
        save_grid(samples, grid)
        written.append(grid)
    (folder / "result.json").write_text(json.dumps(to_dict(result), indent=2) + "\n")
    return written + [folder / "result.json"]


def plot_curves(rows: list[tuple], path: Path, title: str, width: int = 720, height: int = 300) -> Path:
    """Draw D's loss (left) and G's loss (right) of both paths against the step, classic red, ganbench blue."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    draw.text((8, 4), f"{title}: classic (red) vs ganbench (blue), mean loss per log window", fill="black")
    panel_w, top, bottom = width // 2, 24, height - 20
    for panel, (name, a, b) in enumerate((("D loss", 1, 3), ("G loss", 2, 4))):
        left, right = panel * panel_w + 40, (panel + 1) * panel_w - 10
        values = [r[i] for r in rows for i in (a, b)]
        if not rows or not values:
            continue
        low, high = min(values), max(values)
        span = (high - low) or 1.0
        steps = [r[0] for r in rows]
        s0, s1 = min(steps), max(steps) if max(steps) > min(steps) else min(steps) + 1

        def xy(step, value):
            return (left + (step - s0) / (s1 - s0) * (right - left), bottom - (value - low) / span * (bottom - top))

        draw.rectangle([left, top, right, bottom], outline=(160, 160, 160))
        draw.text((left + 4, top + 2), name, fill="black")
        draw.text((left - 36, top), f"{high:.2f}", fill=(90, 90, 90))
        draw.text((left - 36, bottom - 10), f"{low:.2f}", fill=(90, 90, 90))
        draw.text((left, bottom + 4), f"step {s0}", fill=(90, 90, 90))
        draw.text((right - 60, bottom + 4), f"step {s1}", fill=(90, 90, 90))
        for column, colour in ((a, CLASSIC_COLOUR), (b, ENGINE_COLOUR)):
            points = [xy(r[0], r[column]) for r in rows]
            if len(points) > 1:
                draw.line(points, fill=colour, width=2)
            else:
                draw.ellipse([points[0][0] - 2, points[0][1] - 2, points[0][0] + 2, points[0][1] + 2], fill=colour)
    image.save(path)
    return path
