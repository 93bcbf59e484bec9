"""Quality metrics during training: every ``eval_every`` steps, an ``eval`` event in the run's log.

The samples come from fixed noise (seeded by the run's seed), so successive
evaluations differ only by the generator's weights. A metric that cannot run
(an unlabelled dataset, say) turns evaluation off for the run with one warning;
it never stops training.
"""

from __future__ import annotations

import time

import torch

from workbench.base.errors import GanbenchError
from workbench.engine.conditioning import sample_labels
from workbench.engine.samples import generate
from workbench.quality import paper_metrics, sharded
from workbench.quality.detector import InceptionDetector, find_detector, unavailable_reason
from workbench.quality.evaluate import Evaluator
from workbench.rundir.config import eval_metric_names

NOISE_SEED_OFFSET = 2  # the sample grids use seed + 1


class _Periodic:
    """What a run's evaluations share: the evaluator (real side, classifier), the fixed noise, the detector."""

    def __init__(self, run):
        count = run.config.engine["eval_samples"]
        self.evaluator = Evaluator(run.plugins, run.config, run.image_shape[-1], run.device,
                                   eval_metric_names(run.config.engine))
        self.noise = torch.randn(count, run.model.latent_dim,
                                 generator=torch.Generator().manual_seed(run.config.seed + NOISE_SEED_OFFSET))
        self.labels = sample_labels(run.model, count, "cpu")  # each class in turn, if conditional
        self.detector = None

    def inception(self, device):
        """The detector, when the metrics need the generated images' Inception features (loaded once)."""
        if self.detector is None and paper_metrics.wanted(self.evaluator):
            found = find_detector()
            if found is None:
                raise GanbenchError(f"fid needs the Inception detector: {unavailable_reason()}")
            self.detector = self.evaluator.cache[paper_metrics.DETECTOR] = InceptionDetector(found, device)
        return self.detector


def _message(exc: Exception) -> str:
    return str(exc) if isinstance(exc, GanbenchError) else f"{type(exc).__name__}: {exc}"


def _emit(run, result) -> None:
    for error in result.errors:
        run.emit("warning", message=error)
    run.emit("eval", step=run.step, epoch=run.epoch, metrics=result.metrics, samples=result.samples,
             seconds=round(result.seconds, 3), notes=result.notes, protocols=result.protocols)


class PeriodicEvaluation:
    """A run's evaluations: what the command that builds a run hands to the engine (``prepare_run(evaluate=...)``).

    Called every ``eval_every`` steps, it computes the run's metrics (``eval_metrics``, else the default ones),
    emits an ``eval`` event and returns the seconds spent. Under torchrun every rank calls it at the same step
    (``sharded``); rank 0 emits. One instance serves one run: it keeps that run's evaluator, fixed noise and
    detector, built at the first evaluation, and is turned off for the rest of the run by a metric that fails.

    The event: ``{"type": "eval", "step": ..., "metrics": {name: float}, "samples": N, "seconds": s, "notes": [...],
    "protocols": {name: "fid10k_full"}}``.
    """

    def __init__(self):
        self.state: _Periodic | None = None
        self.off = False

    def __call__(self, run) -> float:
        started = time.monotonic()
        if run.ranks.distributed:
            self._in_job(run)
        elif not self.off:
            try:
                state = self._state(run)
                labels = None if state.labels is None else state.labels.to(run.device)
                images = generate(run.model, state.noise.to(run.device), labels)
                _emit(run, state.evaluator.evaluate(images, labels))
            except Exception as exc:  # the metrics must never end a training run
                self._turn_off(run, _message(exc))
        return time.monotonic() - started

    def _state(self, run) -> _Periodic:
        if self.state is None:
            self.state = _Periodic(run)
        return self.state

    def _turn_off(self, run, message: str) -> None:
        if run.ranks.leader:
            run.emit("warning", message=f"Quality metrics are off for the rest of this run: {message}")
        self.off = True

    def _in_job(self, run) -> None:
        """Every rank its share, one gather, rank 0 the metrics; all ranks reach the gather whatever failed."""
        ranks = run.ranks
        share = sharded.Share(ranks.rank, off=self.off)
        if not share.off:
            try:
                state = self._state(run)
                share = sharded.make_share(run.model, state.noise, state.labels, ranks.rank, ranks.world,
                                           run.device, state.inception(run.device))
            except Exception as exc:
                share = sharded.Share(ranks.rank, error=_message(exc))
        shares = sharded.gather(share)
        if any(s.off for s in shares):  # rank 0's evaluation failed last time (it said why then)
            self.off = True
            return
        failed = next((s for s in shares if s.error), None)
        if failed is not None:
            self._turn_off(run, f"rank {failed.rank}: {failed.error}")
            return
        if not ranks.leader:
            return
        images, features = sharded.assemble(shares)
        try:
            precomputed = {} if features is None else {paper_metrics.FAKE_FEATURES: features}
            result = self.state.evaluator.evaluate(images, self.state.labels, precomputed)
            drawn = " and embedded by Inception" if features is not None else ""
            result.notes.append(f"{images.shape[0]:,} samples drawn{drawn} by {ranks.world} ranks")
            _emit(run, result)
        except Exception as exc:
            self._turn_off(run, _message(exc))
