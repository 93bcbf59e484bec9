"""``ganbench runs``: the runs in a runs folder with status and last metrics."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from workbench.base.errors import GanbenchError

NAME = "runs"
HELP = "list runs with status and last metrics"


def add_arguments(parser) -> None:
    parser.add_argument("--runs-dir", default=argparse.SUPPRESS,
                        help="the runs folder (default: $GANBENCH_RUNS_DIR, else runs)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument("--sort", metavar="METRIC", help="best first by the last value of a quality metric "
                        "(fd, classes_covered, precision, ...; see `ganbench eval`)")


def _num(value) -> str:
    return f"{value:.3f}" if isinstance(value, (int, float)) else "-"


def _metric(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else "-"


def _rate(value) -> str:
    return f"{value:,.0f}" if isinstance(value, (int, float)) else "-"


def main(args) -> int:
    from workbench.quality.history import latest_metrics
    from workbench.rundir.directory import list_runs, summarize

    from workbench.rundir.config import default_runs_dir

    args.runs_dir = args.runs_dir or default_runs_dir()
    if Path(args.runs_dir).exists() and not Path(args.runs_dir).is_dir():
        raise GanbenchError(f"{args.runs_dir} is a file, not a runs folder.")
    rows = [summarize(r) for r in list_runs(Path(args.runs_dir))]
    for row in rows:
        row["quality"] = latest_metrics(Path(row["path"]) / "events.jsonl")
    if args.sort:
        rows = _sorted_by_metric(rows, args.sort)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    sweeps = _sweeps(Path(args.runs_dir))
    if not rows:
        print(f"No runs in {args.runs_dir}." if not sweeps else sweeps)
        return 0
    from rich.console import Console
    from rich.table import Table

    console = Console()
    wide = console.width >= 120  # at 80 columns the dataset and start time are left out
    shown = args.sort or ("fd" if any("fd" in row["quality"] for row in rows) else None)
    jobs = any(row["world_size"] > 1 for row in rows)  # torchrun jobs: how many processes, the whole job's rate
    columns = ["run", "status", "model"] + (["dataset"] if wide else []) + ["loss", "steps", "D loss", "G loss"] \
        + (["procs", "img/s"] if jobs else []) + ([shown] if shown else [])
    grid = Table(box=None, pad_edge=False)
    for column in columns + (["started"] if wide else []):
        grid.add_column(column, no_wrap=True, max_width=(44 if wide else 26) if column == "run" else None)
    for row in rows:
        steps = f"{row['step']:,}" + (f"/{row['total_steps']:,}" if row["total_steps"] else "")
        cells = [row["name"], row["status"], row["model"]] + ([row["dataset"]] if wide else []) + \
            [row["loss"], steps, _num(row["d_loss"]), _num(row["g_loss"])] \
            + ([str(row["world_size"]), _rate(row["images_per_s"])] if jobs else []) \
            + ([_metric(row["quality"].get(shown, {}).get("value"))] if shown else [])
        if wide:
            cells.append(time.strftime("%Y-%m-%d %H:%M", time.localtime(row["started"])) if row["started"] else "")
        grid.add_row(*cells)
    console.print(grid)
    if sweeps:
        print(sweeps)
    return 0


def _sweeps(root: Path) -> str:
    """One line per sweep folder: its trials are runs too, listed with --runs-dir SWEEP_DIR."""
    from workbench.sweep.manifest import list_sweeps, summarize_sweep

    lines = []
    for sweep in list_sweeps(root):
        row = summarize_sweep(sweep)
        lines.append(f"sweep {row['name']}: {row['status']}, {row['step']}/{row['total_steps']} trials done "
                     f"(ganbench compare {sweep.path}; its runs: ganbench runs --runs-dir {sweep.path})")
    return "\n".join(lines)


def _sorted_by_metric(rows: list[dict], name: str) -> list[dict]:
    """Runs with the metric, best first (its plugin says which way is better), then runs without it."""
    from workbench.host.manager import load_plugins

    spec = load_plugins().registry.metric(name)  # an unknown name ends here, in one sentence
    have = [row for row in rows if name in row["quality"]]
    have.sort(key=lambda row: row["quality"][name]["value"], reverse=not spec.lower_is_better)
    return have + [row for row in rows if name not in row["quality"]]
