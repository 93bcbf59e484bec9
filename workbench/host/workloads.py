"""What a benchmark workload is: the spec ``ganbench_register_workloads`` registers, as models are registered.

The core knows no particular GAN: a plugin's ``ganbench_register_workloads(register)``
hook registers ``Workload``s, each pairing an engine model plugin with a reference
implementation of the same algorithm (the core plugin ``classic`` registers the
classic scripts this way).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from workbench.base.errors import ConfigError


@dataclass
class ClassicData:
    """What the benchmark hands a workload to build the reference's own data pipeline from.

    :param hp: the hyper-parameters both paths use.
    :param workdir: a temporary folder the workload may write files into.
    :param images: the engine's uint8 images (N, C, H, W) of the dataset plugin, or None for a folder workload.
    :param labels: their labels, when the dataset has them.
    :param folder: the image folder, for a workload with ``reads_folder``.
    :param dataset: the engine's dataset name (None for a folder workload).
    """

    hp: dict
    workdir: Path
    images: Any = None
    labels: Any = None
    folder: Path | None = None
    dataset: str | None = None


@dataclass
class ClassicScript:
    """A reference script the whole-process benchmark runs as a process of its own.

    :param path: the ``.py`` file, started as ``python path ARGS``.
    :param arguments: turns (hyper-parameters, steps, data folder, dataset name) into the script's
        command-line arguments.
    :param data_root: prepares, once, the folder of files the script reads from the engine's dataset
        (called with the dataset's name, the engine's images, their labels and a work folder).
    """

    path: Path
    arguments: Callable[[dict, int, Path, str], list[str]]
    data_root: Callable[[str, Any, Any, Path], Path]


@dataclass(frozen=True)
class Workload:
    """One side-by-side case: an engine model and a reference loop of the same algorithm.

    :param name: the name given with ``ganbench bench --model``.
    :param model: the engine's model plugin.
    :param script: the reference the ``classic`` loop re-states (shown in the report).
    :param classic: ``classic(hp, image_shape, device, images_dir)`` builds the reference loop: an object with
        ``networks`` (named like the engine model's, same state-dict keys), ``train(dataloader, n_epochs)``
        yielding ``(images, d_loss, g_loss)`` per batch, ``generate(z)`` and a ``save_samples`` flag.
    :param classic_data: builds the reference's own data loader factory from a ``ClassicData``.
    :param hyperparams: the plugin settings both paths use (the reference's defaults).
    :param reads_folder: trains on a folder of images (``--image-folder``) instead of a dataset plugin.
    :param make_folder: for ``reads_folder``: ``make_folder(root, count, seed)`` writes generated images when
        the user names no folder.
    :param steps: timed steps by device type when ``--steps`` is not given.
    :param warmup: untimed steps by device type when ``--warmup`` is not given (cuDNN autotuning,
        the DataLoader's workers starting, first allocations).
    :param whole_process: the standalone script for ``ganbench bench --whole-process``, if there is one.
    """

    name: str
    model: str
    script: str
    classic: Callable[..., Any]
    classic_data: Callable[[ClassicData], Callable[[], Iterable]]
    hyperparams: dict = field(default_factory=dict)
    reads_folder: bool = False
    make_folder: Callable[[Path, int, int], Path] | None = None
    steps: dict = field(default_factory=dict)
    warmup: dict = field(default_factory=dict)
    whole_process: ClassicScript | None = None

    @property
    def description(self) -> str:
        """One line for ``ganbench plugins``: what is timed against what."""
        return f"the {self.model} model against {self.script}"

    def default_steps(self, device_type: str) -> int:
        """Timed steps on ``device_type`` when the user gives no ``--steps``."""
        return self.steps.get(device_type, self.steps["cpu"])

    def default_warmup(self, device_type: str) -> int:
        """Warm-up steps on ``device_type`` when the user gives no ``--warmup``."""
        return self.warmup.get(device_type, self.warmup["cpu"])


def registered_workloads(registry) -> dict[str, Workload]:
    """The workloads the loaded plugins registered (``Registry.workloads``), by name."""
    return {name: item.spec for name, item in registry.workloads.items()}


def choose(workloads: dict[str, Workload], names: list[str] | None) -> list[Workload]:
    """The workloads named with ``--model`` (all of them for none or ``all``), or one sentence naming the choices."""
    if not workloads:
        raise ConfigError("No plugin registers a benchmark workload (the core plugin classic does; is it disabled?).")
    if not names or "all" in names:
        return list(workloads.values())
    unknown = [n for n in names if n not in workloads]
    if unknown:
        raise ConfigError(f'Unknown benchmark workload "{unknown[0]}"; choose from {", ".join(workloads)} or all.')
    return [workloads[n] for n in dict.fromkeys(names)]
