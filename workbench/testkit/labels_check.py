"""The test kit's checks of the labels path, for conditional model plugins (``batch_fields = ("labels",)``).

``workbench.testing.check_model_plugin`` (workbench/testkit/model_check.py) calls ``check_labels_path`` after its
usual checks when the model is conditional: the run trained on the kit's two
labelled classes (ellipse, box); here the checkpoint must name them, the
reloaded generator must draw other images for another label from the same
noise, and the run's sample grid must have one row per class.
"""

from __future__ import annotations

from pathlib import Path

import torch

from workbench.base.errors import GanbenchError
from workbench.testkit.report import PluginCheckError


class LabelsCheckError(PluginCheckError):
    """A conditional plugin failed a check of its labels path."""


def check_labels_path(plugins, run, device: str, classes: tuple[str, ...]) -> None:
    """Check a finished conditional run: class names in its checkpoint, labels reaching ``generate``, a grid row
    per class. Raises ``LabelsCheckError`` saying what is wrong."""
    from workbench.engine import checkpoint as ckpt
    from workbench.engine.inference import load_model
    from workbench.engine.samples import generate

    name = run.config.model
    meta = ckpt.read_metadata(run.dir.latest)
    if meta.get("classes") != list(classes):
        raise LabelsCheckError(f"{run.dir.latest.name} names the classes {meta.get('classes')}, not {list(classes)}.")
    if run.model.n_classes != len(classes):
        raise LabelsCheckError(f"{name} was built for {run.model.n_classes} classes on a dataset of {len(classes)}; "
                               f"build must read data.n_classes.")
    try:
        loaded, _ = load_model(run.dir.latest, plugins, device)
    except GanbenchError as exc:
        raise LabelsCheckError(str(exc)) from exc
    first = next(next(iter(loaded.networks.values())).parameters())
    z = torch.randn(4, loaded.latent_dim, generator=torch.Generator().manual_seed(11)).to(first.device)
    per_class = [generate(loaded, z, torch.full((4,), label, device=z.device)) for label in range(len(classes))]
    if torch.allclose(per_class[0], per_class[1], atol=1e-6):
        raise LabelsCheckError(f"{name}: generate(z, labels) draws the same images for every label; the labels "
                               f"must reach the generator.")
    _check_grid_rows(run.dir.samples, len(classes), run.image_shape[1], name)


def _check_grid_rows(samples: Path, rows: int, side: int, name: str) -> None:
    from PIL import Image

    grids = sorted(samples.glob("*.png"))
    if not grids:
        raise LabelsCheckError(f"The run of {name} wrote no sample grid.")
    with Image.open(grids[-1]) as grid:
        height = grid.size[1]
    if height != rows * (side + 2) + 2:
        raise LabelsCheckError(f"{grids[-1].name} is {height} pixels high; a grid of one row per class ({rows} rows "
                               f"of {side} px and 2 px padding) is {rows * (side + 2) + 2}.")
