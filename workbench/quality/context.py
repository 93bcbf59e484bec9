"""What a metric plugin computes from: the generated images, the evaluator's real side, and caches."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Protocol

import torch

if TYPE_CHECKING:
    from workbench.quality.reference import Reference


class EvaluatorView(Protocol):
    """What a metric may use of the evaluator running it (``workbench.quality.evaluate.Evaluator`` is one)."""

    config: Any  # the run's RunConfig
    plugins: Any  # the loaded PluginSet
    device: torch.device
    cache: dict[str, Any]  # values kept for the evaluator's life (``MetricContext.memo(keep=True)``)

    def reference(self) -> Reference: ...


@dataclass
class MetricContext:
    """The input of ``MetricSpec.compute``; one per evaluation.

    :param fake: the generated images, uint8 (N, C, H, W) at the model's image size.
    :param evaluator: the ``Evaluator`` running the metrics (its ``config``, ``plugins``, ``device``).
    :param notes: sentences for people a metric may add (shown by ``ganbench eval``, stored in the event).
        What holds for every evaluation of an evaluator (which classifier, how the splits were made) is noted
        once, in its first evaluation: ``memo(key, lambda: ctx.notes.append(...), keep=True)``.
    :param labels: the class each image was drawn for (int64 (N,)), for a conditional model; else None.
    :param protocols: {metric: protocol name} a metric fills in when its number means something only under a
        named protocol (``fid`` says ``fid50k_full``); stored with the values, so numbers of two protocols are
        told apart.
    """

    fake: torch.Tensor
    evaluator: EvaluatorView
    notes: list[str] = field(default_factory=list)
    labels: torch.Tensor | None = None
    protocols: dict[str, str] = field(default_factory=dict)
    _cache: dict[str, Any] = field(default_factory=dict)

    @property
    def device(self) -> torch.device:
        return self.evaluator.device

    def memo(self, key: str, compute: Callable[[], Any], keep: bool = False) -> Any:
        """``compute()`` once per evaluation (and once per evaluator with ``keep=True``, for the real side)."""
        cache = self.evaluator.cache if keep else self._cache
        if key not in cache:
            cache[key] = compute()
        return cache[key]

    def reference(self) -> Reference:
        """The held-out real images, their features and the domain classifier (trained on first use)."""
        reference = self.evaluator.reference()
        # the same for every evaluation: said once, not in every eval event of a run
        self.memo("reference.notes", lambda: self.notes.extend(reference.notes), keep=True)
        return reference
