"""``ganbench runs``: the runs in a runs folder with status and last metrics."""

from __future__ import annotations

import json
import time
from pathlib import Path

NAME = "runs"
HELP = "list runs with status and last metrics"


def add_arguments(parser) -> None:
    parser.add_argument("--runs-dir", default="runs", help="the runs folder (default: runs)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def _num(value) -> str:
    return f"{value:.3f}" if isinstance(value, (int, float)) else "-"


def main(args) -> int:
    from workbench.engine.rundir import list_runs, summarize

    rows = [summarize(r) for r in list_runs(Path(args.runs_dir))]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print(f"No runs in {args.runs_dir}.")
        return 0
    from rich.console import Console
    from rich.table import Table

    console = Console()
    wide = console.width >= 120  # at 80 columns the dataset and start time are left out
    columns = ["run", "status", "model"] + (["dataset"] if wide else []) + ["loss", "steps", "D loss", "G loss"]
    grid = Table(box=None, pad_edge=False)
    for column in columns + (["started"] if wide else []):
        grid.add_column(column, no_wrap=True, max_width=(44 if wide else 26) if column == "run" else None)
    for row in rows:
        steps = f"{row['step']:,}" + (f"/{row['total_steps']:,}" if row["total_steps"] else "")
        cells = [row["name"], row["status"], row["model"]] + ([row["dataset"]] if wide else []) + \
            [row["loss"], steps, _num(row["d_loss"]), _num(row["g_loss"])]
        if wide:
            cells.append(time.strftime("%Y-%m-%d %H:%M", time.localtime(row["started"])) if row["started"] else "")
        grid.add_row(*cells)
    console.print(grid)
    return 0
