"""Image-to-image data sets made from the Fashion-MNIST that ships with ganbench, in the two usual layouts.

``edges2fashion``: pix2pix's layout (``train/``, ``test/``), each PNG an A|B pair side by side: A the Sobel
edge magnitude of the garment, B the garment, both 32x32 grey. The first 9,000 of the shipped 10,000 images
train, the last 1,000 are the test split.

``sneakers2boots``: CycleGAN's layout (``trainA/``, ``trainB/``, ``testA/``, ``testB/``): the 1,000 sneakers
as domain A and the 1,000 ankle boots as domain B, unpaired; the first 800 of each train, the last 200 test.

    python examples/make_pairs.py OUT_DIR        # writes OUT_DIR/edges2fashion and OUT_DIR/sneakers2boots

Then, for example::

    ganbench run --plugin pix2pix --data-root OUT_DIR/edges2fashion --set image_size=32 ...
    ganbench run --plugin cyclegan --data-root OUT_DIR/sneakers2boots --set image_size=32 ...
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
import torch.nn.functional as F

from workbench.data.idx import read_idx

SHIPPED = Path(__file__).resolve().parent.parent / "plugins" / "data"
SNEAKER, ANKLE_BOOT = 7, 9


def sobel_edges(images: torch.Tensor) -> torch.Tensor:
    """uint8 (N, 1, H, W) grey images as the uint8 magnitude of their Sobel gradient, each image scaled to 0..255."""
    x = images.float() / 255
    kx = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]]).view(1, 1, 3, 3)
    gx = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), kx)
    gy = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), kx.transpose(2, 3))
    magnitude = (gx.square() + gy.square()).sqrt()
    peak = magnitude.flatten(1).amax(1).clamp(min=1e-6).view(-1, 1, 1, 1)
    return (magnitude / peak * 255).round().to(torch.uint8)


def to_side(images: torch.Tensor, side: int) -> torch.Tensor:
    """uint8 (N, 1, 28, 28) as (N, 1, side, side), bilinear."""
    x = F.interpolate(images.float(), size=(side, side), mode="bilinear", align_corners=False, antialias=True)
    return x.round().clamp(0, 255).to(torch.uint8)


def write_png(pixels: torch.Tensor, path: Path) -> None:
    from PIL import Image

    Image.fromarray(pixels.squeeze(0).numpy(), mode="L").save(path)


def make_edges2fashion(images: torch.Tensor, out: Path, test: int = 1000) -> None:
    edges = sobel_edges(images)
    for split, rows in (("train", range(0, images.shape[0] - test)), ("test", range(images.shape[0] - test,
                                                                                     images.shape[0]))):
        (out / split).mkdir(parents=True, exist_ok=True)
        for i in rows:
            write_png(torch.cat((edges[i], images[i]), dim=-1), out / split / f"{i:05d}.png")


def make_sneakers2boots(images: torch.Tensor, labels: torch.Tensor, out: Path, test: int = 200) -> None:
    for side, label in (("A", SNEAKER), ("B", ANKLE_BOOT)):
        chosen = images[labels == label]
        for split, part in (("train", chosen[:-test]), ("test", chosen[-test:])):
            folder = out / f"{split}{side}"
            folder.mkdir(parents=True, exist_ok=True)
            for i, image in enumerate(part):
                write_png(image, folder / f"{i:04d}.png")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="folder to write edges2fashion/ and sneakers2boots/ into")
    parser.add_argument("--side", type=int, default=32, help="image side (default 32)")
    parser.add_argument("--limit", type=int, default=0, help="use only the first N shipped images (0: all 10,000)")
    args = parser.parse_args(argv)
    images = read_idx(SHIPPED / "t10k-images-idx3-ubyte.gz").unsqueeze(1)
    labels = read_idx(SHIPPED / "t10k-labels-idx1-ubyte.gz").long()
    if args.limit:
        images, labels = images[:args.limit], labels[:args.limit]
    images = to_side(images, args.side)
    make_edges2fashion(images, args.out / "edges2fashion", test=max(1, images.shape[0] // 10))
    make_sneakers2boots(images, labels, args.out / "sneakers2boots",
                        test=max(1, int((labels == SNEAKER).sum()) // 5))
    print(f"wrote {args.out / 'edges2fashion'} and {args.out / 'sneakers2boots'}")


if __name__ == "__main__":
    main()
