"""The run configuration: what the CLI, the workbench and checkpoints agree on."""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from workbench.base.errors import ConfigError
from workbench.base.params import HyperParam

# Settings of the engine itself, also given with --set key=value.
ENGINE_PARAMS = (
    HyperParam("log_every", "int", 200, "write a metrics event at least every N steps", min=1),
    HyperParam("log_seconds", "float", 1.0, "... and at least every S seconds", min=0.05),
    HyperParam("sample_every", "int", 500, "write a fixed-noise sample grid every N steps (0: at the end only)", min=0),
    HyperParam("checkpoint_every", "int", 2000, "write a checkpoint every N steps, and at the end", min=1),
    HyperParam("keep_checkpoints", "int", 3, "how many step checkpoints to keep besides the latest", min=1),
    HyperParam("sample_count", "int", 64, "images in each sample grid", min=1, max=1024),
    HyperParam("eval_every", "int", 0, "compute the quality metrics (see `ganbench eval`) every N steps "
               "(0: never)", min=0),
    HyperParam("eval_samples", "int", 10000, "generated images per quality evaluation", min=10, max=100000),
    HyperParam("eval_metrics", "str", "", "the metrics of those evaluations, joined by + (e.g. fd+fid; empty: "
               "the default metrics)"),
    HyperParam("on_nan", "str", "stop", "when a loss or weight turns NaN/Inf: stop the run, or skip that step "
               "(skip checks every step, which costs a little speed)", choices=("stop", "skip")),
    HyperParam("amp", "str", "none", "mixed precision of the training step (CUDA only): none, bf16 autocast, or "
               "fp16 autocast with a loss scaler per optimizer", choices=("none", "bf16", "fp16")),
    HyperParam("compile", "str", "off", "torch.compile each network: off, or on (slow first steps, needs a C "
               "compiler)", choices=("off", "on")),
    HyperParam("cuda_graphs", "str", "auto", "replay the training step as one CUDA graph: auto (on CUDA, for "
               "models that declare their step graph-safe), on, or off", choices=("auto", "on", "off")),
    HyperParam("ema_kimg", "float", 0.0, "generator EMA: half-life in thousands of images (0: off); grids, "
               "sample and eval then draw from the average", min=0.0, max=100000.0),
    HyperParam("ema_rampup", "float", 0.0, "EMA ramp-up: the half-life is at most this share of the images "
               "seen so far (0: none; stylegan2-ada uses 0.05)", min=0.0, max=1.0),
    HyperParam("augment", "str", "none", "augment every image D sees: none, diffaug (DiffAugment: colour, "
               "translation, cutout) or ada (adaptive p from the sign of D(real))", choices=("none", "diffaug", "ada")),
    HyperParam("augment_p", "float", 1.0, "diffaug: the probability of each op (ada starts from 0 and adapts)",
               min=0.0, max=1.0),
    HyperParam("ada_target", "float", 0.6, "ada: the target of E[sign(D(real))]", min=0.0, max=1.0),
    HyperParam("ada_interval", "int", 4, "ada: adjust p every N steps", min=1, max=10000),
    HyperParam("ada_kimg", "float", 500.0, "ada: thousands of images for p to go from 0 to 1", min=0.001,
               max=100000.0),
    HyperParam("r1_gamma", "float", 0.0, "R1: weight of the zero-centred gradient penalty on real images (0: off)",
               min=0.0, max=1e6),
    HyperParam("r2_gamma", "float", 0.0, "R2: weight of the zero-centred gradient penalty on fakes (0: off)",
               min=0.0, max=1e6),
    HyperParam("reg_every", "int", 16, "apply R1/R2 every N steps, scaled by N (lazy regularisation; 1: every "
               "step)", min=1, max=10000),
    HyperParam("train_images", "int", 0, "train on this many images of the training split (0: all), the same "
               "fixed subset in every run: the small-data regime", min=0, max=100_000_000),
    HyperParam("time_limit", "float", 0.0, "stop after this many minutes of training by this process (pauses and "
               "evaluations not counted) with a checkpoint, as completed: runs and sweep trials of equal wall time "
               "(0: no limit)",
               min=0.0, max=1e7),
    HyperParam("direction", "str", "AtoB", "image-to-image datasets: translate A to B, or B to A (the two sides "
               "swapped)", choices=("AtoB", "BtoA")),
    HyperParam("sync_bn", "bool", False, "under torchrun on CUDA: BatchNorm statistics over the whole job's "
               "batch (SyncBatchNorm) rather than each GPU's share"),
)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def default_runs_dir() -> str:
    """Where runs go when no ``--runs-dir`` says: ``$GANBENCH_RUNS_DIR``, else ``runs``. Every command and the
    workbench use this one answer, so a headless run lands where the workbench looks."""
    return os.environ.get("GANBENCH_RUNS_DIR") or "runs"


@dataclass
class RunConfig:
    """Everything that defines a run. ``hyperparams`` holds every value the model declares."""

    model: str
    dataset: str
    loss: str
    hyperparams: dict[str, Any]
    engine: dict[str, Any] = field(default_factory=lambda: {p.name: p.default for p in ENGINE_PARAMS})
    steps: int | None = None
    kimg: float | None = None  # the length in thousands of images (all ranks), instead of steps or epochs
    device: str = "auto"
    seed: int = 0
    runs_dir: str = field(default_factory=default_runs_dir)
    name: str | None = None
    data_root: str | None = None
    download: bool = False
    # Who started the run and why, e.g. {"sweep": ..., "trial": 3, "point": {"lr": 0.0002}}: kept in
    # config.json and checkpoints for whoever reads them; the engine never looks inside.
    tags: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


def eval_metric_names(engine: dict[str, Any]) -> list[str] | None:
    """The metrics ``eval_metrics`` names (``fd+fid``), or None for the default ones."""
    names = [name.strip() for name in str(engine.get("eval_metrics") or "").split("+")]
    return [name for name in names if name] or None


_FIELD_TYPES = {"model": (str,), "dataset": (str,), "loss": (str,), "hyperparams": (dict,), "engine": (dict,),
                "steps": (int, type(None)), "kimg": (int, float, type(None)), "device": (str,), "seed": (int,),
                "runs_dir": (str,),
                "name": (str, type(None)), "data_root": (str, type(None)), "download": (bool,),
                "tags": (dict,)}


def check_types(config: RunConfig) -> None:
    """Each field of the configuration has its type, or one sentence says which does not."""
    # A configuration read back from a checkpoint or config.json may have been edited by hand.
    for key, types in _FIELD_TYPES.items():
        value = getattr(config, key)
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            expected = " or ".join("null" if t is type(None) else t.__name__ for t in types)
            raise ConfigError(f'The run setting "{key}" must be {expected}, not {value!r}.')


def check_run_name(name: str) -> str:
    """A run name is one folder name: letters, digits, '.', '_' and '-', no path separators, not '..'."""
    if not _NAME.match(name) or ".." in name:
        raise ConfigError(f'The run name "{name}" must be letters, digits, ".", "_" or "-" '
                          f"(no path separators or '..'), at most 100 characters.")
    return name


def run_name_default(config: RunConfig, now: str) -> str:
    return f"{config.model}-{config.dataset}-{now}"


def runs_root(config: RunConfig) -> Path:
    return Path(config.runs_dir).expanduser()
