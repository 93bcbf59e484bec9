"""Image-to-image models in a run: their image fields on the device, the held-out set, the fixed grid inputs.

A translator (``workbench.host.translation``) draws no grid from noise: its progress grids translate a fixed set of
held-out inputs, kept beside the fixed noise and saved in checkpoints (``fixed/<name>``), in groups of three
rows: input | output | target for a paired model, A | A → B | A → B → A for an unpaired one.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from workbench.base.errors import DataError
from workbench.data.device import resize_uint8
from workbench.data.fields import to_float
from workbench.data.folder import decode_square, list_images
from workbench.engine.samples import generate
from workbench.host.registry import ImageData
from workbench.host.translation import image_fields, is_paired, orient

HELD_OUT_MAX = 256  # held-out images handed to the model for its own metrics (model.held_out)
FIXED_PREFIX = "fixed/"


def device_fields(data: ImageData, model, image_size: int, device: torch.device) -> dict[str, torch.Tensor]:
    """The model's image fields of ``data`` as uint8 on ``device``, resized to ``image_size``."""
    return {name: resize_uint8(data.fields[name].to(device), image_size) for name in image_fields(model)}


def held_out(load, config, model, image_size: int, device: torch.device) -> tuple[dict[str, torch.Tensor], str | None]:
    """The test split of a translator's dataset as float images on ``device`` (at most ``HELD_OUT_MAX``):
    ``{"images": targets or domain A, <field>: sources or domain B}``, and a warning when the dataset has no
    test split (the first training images stand in then). ``load(split)`` loads the run's dataset."""
    warning = None
    try:
        data = load("test")
        if not all(name in (data.fields or {}) for name in image_fields(model)):
            raise DataError("its test split is not a translation set")
    except DataError as exc:
        data = load("train")
        warning = (f'Dataset "{config.dataset}" has no usable test split ({str(exc).rstrip(".")}); the grids and '
                   f"the held-out metrics use the first training images.")
    data = orient(data, config.engine["direction"], config.dataset)
    memory_format = torch.channels_last if model.channels_last else torch.contiguous_format
    out = {"images": data.images[:HELD_OUT_MAX]}
    out.update({name: data.fields[name][:HELD_OUT_MAX] for name in image_fields(model)})
    return {name: to_float(resize_uint8(t.to(device), image_size), memory_format) for name, t in out.items()}, warning


def grid_layout(sample_count: int) -> tuple[int, int]:
    """(images a row, groups of three rows) of a translator's grid of about ``sample_count`` images."""
    columns = max(1, math.isqrt(sample_count))
    return columns, max(1, (sample_count // columns) // 3)


def fixed_inputs(held: dict[str, torch.Tensor], model, sample_count: int) -> dict[str, torch.Tensor]:
    """The grid's inputs: ``source`` (and the paired ``target``), the first images of the held-out set."""
    columns, groups = grid_layout(sample_count)
    n = columns * groups
    if is_paired(model):
        return {"source": held["source"][:n].clone(), "target": held["images"][:n].clone()}
    return {"source": held["images"][:n].clone()}


def translate(model, source: torch.Tensor, inverse: bool = False) -> torch.Tensor:
    """``model``'s translation of ``source`` (float images in [-1, 1]); ``inverse``: an unpaired model's B → A."""
    z = torch.zeros(source.shape[0], model.latent_dim, device=source.device)
    extra = {"inverse": True} if inverse else {}
    return generate(model, z, source=source, **extra)


def draw_translation_grid(model, inputs: dict[str, torch.Tensor], sample_count: int) -> tuple[torch.Tensor, int]:
    """The grid's images, three rows a group (see the module docstring), and how many a row."""
    columns, groups = grid_layout(sample_count)
    source = inputs["source"][:columns * groups]
    columns = min(columns, source.shape[0])
    source = source[:source.shape[0] // columns * columns]
    output = translate(model, source)
    third = inputs["target"][:source.shape[0]] if is_paired(model) else translate(model, output, inverse=True)
    rows = [part.float().reshape(-1, columns, *part.shape[1:]) for part in (source, output, third)]
    return torch.stack(rows, 1).reshape(-1, *source.shape[1:]), columns


def translation_rows(model, inputs: dict[str, torch.Tensor], sample_count: int) -> list[str]:
    """The label of each row of a translator's grid (``draw_translation_grid``), top to bottom."""
    labels = ["input", "output", "target"] if is_paired(model) else ["A", "A → B", "A → B → A"]
    columns, groups = grid_layout(sample_count)
    count = min(columns * groups, inputs["source"].shape[0])
    return labels * (count // min(columns, count))


def read_inputs(path: Path, side: int, channels: int) -> tuple[list[Path], torch.Tensor]:
    """The image file ``path``, or every image below the folder ``path``, as float (N, C, side, side) in [-1, 1]
    (shorter side resized to ``side``, centre-cropped), with the files read; unreadable files are left out."""
    files = [path] if path.is_file() else list_images(path)
    decoded = [(file, decode_square(file, side, channels)) for file in files]
    kept = [(file, image) for file, image in decoded if image is not None]
    if not kept:
        raise DataError(f"None of the {len(files)} files given with --input ({path}) could be read as an image.")
    return [file for file, _ in kept], to_float(torch.stack([image for _, image in kept]), torch.contiguous_format)


def translate_files(model, image_shape, path: Path, output: Path, chunk: int = 256) -> list[Path]:
    """Translate the image ``path`` (or the images of the folder ``path``) with ``model`` and write the results as
    PNGs: to the file ``output`` for one image, into the folder ``output`` (one file a name) for a folder.
    Returns the files written."""
    from workbench.engine.samples import to_pixels, write_png

    if not path.exists():
        raise DataError(f"--input {path} does not exist.")
    files, images = read_inputs(path, int(image_shape[-1]), int(image_shape[0]))
    device = next(p for net in model.networks.values() for p in net.parameters()).device
    written = []
    for start in range(0, len(files), chunk):
        pixels = to_pixels(translate(model, images[start:start + chunk].to(device))).cpu()
        for file, image in zip(files[start:start + chunk], pixels):
            target = output if path.is_file() else output / f"{file.relative_to(path).with_suffix('')}.png"
            write_png(image.permute(1, 2, 0).contiguous(), target)
            written.append(target)
    return written
