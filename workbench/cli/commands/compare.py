"""``ganbench compare``: a sweep's settings (or any runs) side by side by sample quality."""

from __future__ import annotations

import json
from pathlib import Path

from workbench.base.errors import ConfigError

NAME = "compare"
HELP = "compare a sweep's settings, or any runs, by a quality metric (mean ± std over seeds)"


def add_arguments(parser) -> None:
    parser.add_argument("paths", nargs="+", metavar="SWEEP_DIR | RUN_DIR", help="a sweep folder, or run directories")
    parser.add_argument("--metric", help="the quality metric, or a metric the model declares such as val_l1 (default: the sweep's objective, else fd)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument("--out", metavar="DIR", help="also write curves.png and contact-sheet.png into DIR")


def main(args) -> int:
    from workbench.rundir.directory import RunDir
    from workbench.sweep.compare import compare_runs, declared_direction, format_table, sweep_runs, sweep_statuses
    from workbench.sweep.manifest import Sweep, is_sweep

    runs, statuses, metric, lower = [], {}, args.metric, None
    for given in args.paths:
        path = Path(given)
        if is_sweep(path):
            sweep = Sweep.open(path, "compare")
            manifest = sweep.read()
            runs += sweep_runs(sweep)
            statuses.update(sweep_statuses(sweep))
            if metric is None or metric == manifest["objective"]["metric"]:
                metric, lower = manifest["objective"]["metric"], manifest["objective"]["lower_is_better"]
        elif RunDir(path).config.is_file():
            runs.append(RunDir(path))
        else:
            raise ConfigError(f"{path} is neither a sweep folder nor a run directory (it has no sweep.json or "
                              f"config.json).")
    metric = metric or "fd"
    if lower is None:
        lower = declared_direction(runs, metric)  # a metric the model declares (val_l1), or None
    if lower is None:
        from workbench.host.manager import load_plugins

        lower = load_plugins().registry.metric(metric).lower_is_better
    report = compare_runs(runs, metric, lower, statuses)
    written = _pictures(report, Path(args.out)) if args.out else []
    if args.json:
        report["files"] = [str(p) for p in written]
        print(json.dumps(report, indent=1))
        return 0
    print(format_table(report))
    for path in written:
        print(f"wrote {path}")
    return 0


def _pictures(report, out: Path) -> list[Path]:
    from workbench.sweep.figures import contact_sheet, plot_curves

    out.mkdir(parents=True, exist_ok=True)
    made = [plot_curves(report, out / "curves.png"), contact_sheet(report, out / "contact-sheet.png")]
    return [path for path in made if path is not None]
