"""Quality metrics during training: every ``eval_every`` steps, an ``eval`` event in the run's log.

The samples come from fixed noise (seeded by the run's seed), so successive
evaluations differ only by the generator's weights. A metric that cannot run
(an unlabelled dataset, say) turns evaluation off for the run with one warning;
it never stops training.
"""

from __future__ import annotations

import time
import weakref

import torch

from workbench.config import eval_metric_names
from workbench.engine.conditioning import sample_labels
from workbench.engine.samples import generate
from workbench.errors import GanbenchError
from workbench.quality.evaluate import Evaluator

NOISE_SEED_OFFSET = 2  # the sample grids use seed + 1
_STATE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


class _Periodic:
    """What a run's evaluations share: the evaluator (real side, classifier) and the fixed noise."""

    def __init__(self, run):
        count = run.config.engine["eval_samples"]
        self.evaluator = Evaluator(run.plugins, run.config, run.image_shape[-1], run.device,
                                   eval_metric_names(run.config.engine))
        self.noise = torch.randn(count, run.model.latent_dim,
                                 generator=torch.Generator().manual_seed(run.config.seed + NOISE_SEED_OFFSET))


def evaluate_during_training(run) -> float:
    """Compute the run's metrics (``eval_metrics``, else the default ones) now, emit an ``eval`` event, and return
    the seconds spent.

    The event: ``{"type": "eval", "step": ..., "metrics": {name: float}, "samples": N, "seconds": s, "notes": [...],
    "protocols": {name: "fid10k_full"}}``.
    """
    started = time.monotonic()
    if run in _STATE and _STATE[run] is None:  # turned off by an earlier failure
        return 0.0
    try:
        state = _STATE.get(run)
        if state is None:
            state = _STATE[run] = _Periodic(run)
        labels = sample_labels(run.model, state.noise.shape[0], run.device)  # each class in turn, if conditional
        images = generate(run.model, state.noise.to(run.device), labels)
        result = state.evaluator.evaluate(images, labels)
        for error in result.errors:
            run.emit("warning", message=error)
        run.emit("eval", step=run.step, epoch=run.epoch, metrics=result.metrics, samples=result.samples,
                 seconds=round(result.seconds, 3), notes=result.notes, protocols=result.protocols)
    except Exception as exc:  # the metrics must never end a training run
        message = str(exc) if isinstance(exc, GanbenchError) else f"{type(exc).__name__}: {exc}"
        run.emit("warning", message=f"Quality metrics are off for the rest of this run: {message}")
        _STATE[run] = None
    return time.monotonic() - started
