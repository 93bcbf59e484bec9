"""Score an image-to-image checkpoint on its whole held-out split, against doing nothing.

pix2pix: the L1 distance and PSNR of the translations of every test source to its target, and the same for
the identity baseline (the source itself given as the answer). CycleGAN: the Fréchet distance, in the
plugin's 8x8 grey pixel features, of the translated test images to the other domain's test images, and of the
untranslated ones (the baseline a translation must beat), both ways.

    python examples/score_translation.py runs/RUN [--data-root DIR]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
import torch.nn.functional as F

from plugins.i2i_networks import pixel_fd
from plugins.pix2pix import psnr
from workbench.data.device import resize_uint8
from workbench.data.loading import load_images
from workbench.engine.inference import load_model
from workbench.engine.translation import translate
from workbench.host.manager import load_plugins
from workbench.host.translation import DOMAIN_B, SOURCE, orient
from workbench.rundir.config import RunConfig


def as_float(images: torch.Tensor, side: int) -> torch.Tensor:
    return resize_uint8(images, side).float().mul_(2 / 255).sub_(1)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--data-root", help="the dataset's folder, if it moved since training")
    args = parser.parse_args(argv)
    plugins = load_plugins()
    model, checkpoint = load_model(args.run, plugins, "cpu")
    config = RunConfig.from_dict(checkpoint.meta["config"])
    if args.data_root:
        config.data_root = args.data_root
    side = int(checkpoint.meta["image_shape"][-1])
    data = orient(load_images(config, plugins, side, split="test"), config.engine["direction"], config.dataset)
    images = as_float(data.images, side)
    result = {"checkpoint": str(checkpoint.path), "step": checkpoint.step, "test_images": int(images.shape[0])}
    with torch.no_grad():
        if SOURCE in data.fields:
            source = as_float(data.fields[SOURCE], side)
            output = torch.cat([translate(model, part) for part in source.split(256)])
            result.update(l1=F.l1_loss(output, images).item(), psnr=psnr(output, images).item(),
                          identity_l1=F.l1_loss(source, images).item(), identity_psnr=psnr(source, images).item())
        else:
            other = as_float(data.fields[DOMAIN_B], side)
            to_b = torch.cat([translate(model, part) for part in images.split(256)])
            to_a = torch.cat([translate(model, part, inverse=True) for part in other.split(256)])
            result.update(fd_b=pixel_fd(to_b, other).item(), untranslated_fd_b=pixel_fd(images, other).item(),
                          fd_a=pixel_fd(to_a, images).item(), untranslated_fd_a=pixel_fd(other, images).item())
    print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in result.items()}, indent=2))
    return result


if __name__ == "__main__":
    main()
