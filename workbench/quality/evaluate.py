"""Running metric plugins on generated images: the one entry point for the CLI, the engine and the tests."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Sequence

import torch

from workbench.base.errors import GanbenchError, PluginError
from workbench.host.manager import PluginSet
from workbench.host.registry import MetricSpec, Registry
from workbench.quality.context import MetricContext
from workbench.quality.reference import Reference, load_reference
from workbench.rundir.config import RunConfig


@dataclass
class EvalResult:
    """What one evaluation gave: ``metrics`` {name: float}, notes for people, plugin failures.

    ``protocols`` names the protocol of the metrics that have one (``{"fid": "fid50k_full"}``).
    ``seconds`` is the whole evaluation; ``reference_seconds`` the part spent loading the real side
    (reading the dataset, training or reading the classifier), which only the first evaluation pays.
    """

    metrics: dict[str, float]
    notes: list[str]
    samples: int
    seconds: float
    errors: list[str] = field(default_factory=list)
    reference_seconds: float = 0.0
    protocols: dict[str, str] = field(default_factory=dict)


def unavailable_reason(spec: MetricSpec) -> str | None:
    """Why a metric cannot run here (the sentence its ``available()`` returns), or None when it can."""
    try:
        return spec.available() if spec.available else None
    except Exception as exc:  # a plugin's bug: the metric is unusable, the others are not
        return f"its available() raised {type(exc).__name__}: {exc}."


def select_metrics(registry: Registry, names: Sequence[str] | None = None) -> list[MetricSpec]:
    """The named metrics (checked to exist and be usable here), or every default metric usable here."""
    if names:
        specs = []
        for name in dict.fromkeys(names):
            spec = registry.metric(name)
            reason = unavailable_reason(spec)
            if reason:
                raise GanbenchError(f'Metric "{name}" is not available here: {reason}')
            specs.append(spec)
        return specs
    specs = [item.spec for item in registry.metrics.values()
             if item.spec.default and unavailable_reason(item.spec) is None]
    if not specs:
        raise PluginError("No metric plugin is loaded (see `ganbench plugins`).")
    return specs


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """Images in [-1, 1] as uint8 0..255, the way a PNG of them would hold them; uint8 passes through."""
    if images.dtype == torch.uint8:
        return images
    return images.detach().float().add(1).mul_(127.5).round_().clamp_(0, 255).to(torch.uint8)


class Evaluator:
    """Computes metrics of generated images against a dataset's held-out split; reuse it across evaluations.

    :param plugins: the loaded plugins (metrics and the dataset).
    :param config: the run's configuration: ``dataset``, ``data_root`` and ``download`` are used.
    :param image_size: the side of the generated images (the model's ``image_size``).
    :param device: where the classifier runs.
    :param metrics: metric names, or None for every default metric.
    """

    def __init__(self, plugins: PluginSet, config: RunConfig, image_size: int, device: torch.device,
                 metrics: Sequence[str] | None = None):
        self.plugins, self.config, self.image_size, self.device = plugins, config, image_size, device
        self.specs = select_metrics(plugins.registry, metrics)
        self.named = bool(metrics)  # metrics named by the user are never skipped silently
        self.cache: dict[str, Any] = {}
        self._reference: Reference | None = None
        self.reference_seconds = 0.0

    def reference(self) -> Reference:
        """The real side, loaded (and the classifier trained or read from the cache) on first use."""
        if self._reference is None:
            started = time.monotonic()
            self._reference = load_reference(self.config, self.plugins, self.image_size, self.device)
            self.reference_seconds = time.monotonic() - started
        return self._reference

    def evaluate(self, images: torch.Tensor, labels: torch.Tensor | None = None,
                 precomputed: dict[str, Any] | None = None) -> EvalResult:
        """Every selected metric of ``images`` (float in [-1, 1] or uint8, (N, C, H, W)).

        :param labels: the class each image was drawn for (a conditional model's samples); metrics that need
            them (``MetricSpec.needs_labels``) are skipped without, or refused when named.
        :param precomputed: per-evaluation ``MetricContext.memo`` values computed elsewhere (under torchrun,
            the Inception features each rank extracted from its share of the images).
        """
        started, loaded_before = time.monotonic(), self._reference is not None
        ctx = MetricContext(to_uint8(images).cpu(), self, labels=None if labels is None else labels.cpu(),
                            _cache=dict(precomputed or {}))
        metrics: dict[str, float] = {}
        errors: list[str] = []
        for spec in self.specs:
            if spec.needs_labels and labels is None:
                if self.named:
                    raise GanbenchError(f'Metric "{spec.name}" needs samples drawn for given classes: a conditional '
                                        f"model (cgan, acgan).")
                continue
            try:
                metrics[spec.name] = float(spec.compute(ctx))
            except GanbenchError:
                raise
            except Exception as exc:  # a broken metric plugin must not take the others down
                errors.append(f'Metric "{spec.name}" failed: {type(exc).__name__}: {exc}')
        loading = 0.0 if loaded_before or self._reference is None else self.reference_seconds
        return EvalResult(metrics, ctx.notes, int(images.shape[0]), time.monotonic() - started, errors, loading,
                          {k: v for k, v in ctx.protocols.items() if k in metrics})
