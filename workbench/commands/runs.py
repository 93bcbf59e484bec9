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
    return f"{value:.4f}" if isinstance(value, (int, float)) else "-"


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

    grid = Table(box=None, pad_edge=False)
    grid.add_column("run", overflow="fold")
    for column in ("status", "model", "dataset", "loss", "steps", "D loss", "G loss", "started"):
        grid.add_column(column, no_wrap=True)
    for row in rows:
        steps = f"{row['step']:,}" + (f"/{row['total_steps']:,}" if row["total_steps"] else "")
        started = time.strftime("%m-%d %H:%M", time.localtime(row["started"])) if row["started"] else ""
        grid.add_row(row["name"], row["status"], row["model"], row["dataset"], row["loss"], steps,
                     _num(row["d_loss"]), _num(row["g_loss"]), started)
    Console().print(grid)
    return 0
