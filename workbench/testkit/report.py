"""What a check of the test kit returns, and what it raises when a plugin fails it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.base.errors import GanbenchError


class PluginCheckError(AssertionError):
    """A plugin failed a check of the test kit; the message says which and what it did."""


@dataclass
class KitReport:
    """What a successful check left behind, for further assertions of your own.

    :param run_dir: the run directory of the first training run.
    :param metrics: the metrics events of that run, one per step.
    :param checkpoint: the checkpoint the round trip and the sample used.
    :param sample: the PNG grid drawn from the checkpoint (model checks only).
    :param warnings: messages of ``warning`` events (an observer plugin that failed, for example).
    """

    run_dir: Path
    metrics: list[dict[str, Any]]
    checkpoint: Path | None = None
    sample: Path | None = None
    warnings: list[str] = field(default_factory=list)


def blame(function, *args, **kwargs):
    """Call ``function``; a GanbenchError (a broken contract, with its blame) becomes a PluginCheckError."""
    try:
        return function(*args, **kwargs)
    except GanbenchError as exc:
        raise PluginCheckError(str(exc)) from exc
