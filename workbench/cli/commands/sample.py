"""``ganbench sample``: draw images from a checkpoint into a PNG grid; needs no dataset.

The images are drawn in chunks and pasted into one 8-bit grid as they come, so
the memory a grid takes is its pixels, never all the images in float at once.
"""

from __future__ import annotations

import math
from pathlib import Path

from workbench.base.errors import GanbenchError

NAME = "sample"
HELP = "draw images from a checkpoint into a PNG grid"
MAX_IMAGES = 10_000  # a 100 x 100 grid: already more than a screen shows
CHUNK = 256
PADDING = 2  # pixels between the images, as in the grids a run writes


def add_arguments(parser) -> None:
    parser.add_argument("checkpoint", metavar="RUN_DIR_OR_CHECKPOINT")
    parser.add_argument("-n", type=int, default=64, help=f"number of images (default 64, at most {MAX_IMAGES:,})")
    parser.add_argument("-o", "--output", default="samples.png", help="PNG file to write (default samples.png)")
    parser.add_argument("--seed", type=int, default=0, help="noise seed (default 0)")
    parser.add_argument("--device", default="auto", help="auto (default), cpu, cuda or mps")
    parser.add_argument("--raw", action="store_true", help="draw from the trained generator, not its EMA "
                        "(for a run trained with ema_kimg > 0)")
    parser.add_argument("--class", dest="class_name", metavar="NAME_OR_INDEX",
                        help="a conditional model draws only this class (default: one row per class)")
    parser.add_argument("--input", metavar="IMAGE_OR_FOLDER",
                        help="an image-to-image model (pix2pix, cyclegan) translates this image, or every image "
                             "of this folder, resized to its size; -o is then the output PNG or folder")


def main(args) -> int:
    from workbench.engine.inference import draw_from, load_model
    from workbench.engine.samples import save_grid
    from workbench.host.manager import load_plugins
    from workbench.host.translation import is_translator
    from workbench.modeling.model import needs_labels

    if not 1 <= args.n <= MAX_IMAGES:
        raise GanbenchError(f"-n must be between 1 and {MAX_IMAGES:,}; got {args.n:,}.")
    model, checkpoint = load_model(Path(args.checkpoint), load_plugins(), args.device, raw=args.raw)
    output = Path(args.output)
    if is_translator(model) or args.input is not None:
        return translate_input(model, checkpoint, args.input, output)
    try:
        if args.class_name is None and not needs_labels(model):
            write_grid(model, tuple(checkpoint.meta["image_shape"]), args.n, args.seed, output)
            print(f"wrote {args.n} samples to {output}")
            return 0
        drawn = draw_from(model, checkpoint, args.n, args.seed, class_name=args.class_name, by_class=True)
        save_grid(drawn.images, output, drawn.per_row)
    except OSError as exc:
        raise GanbenchError(f"Cannot write {output}: {exc.strerror or exc}.") from None
    count = drawn.images.shape[0]
    if args.class_name is not None:
        print(f"wrote {count} samples of class {drawn.rows[0]} to {output}")
    else:
        print(f"wrote {count} samples to {output}, one row per class: {', '.join(drawn.rows)}")
    return 0


def translate_input(model, checkpoint, source: str | None, output: Path) -> int:
    """``--input``: translate the user's images with an image-to-image model; refuse any other model."""
    from workbench.engine.translation import translate_files
    from workbench.host.translation import is_translator

    name = checkpoint.meta["model"]
    if not is_translator(model):
        raise GanbenchError(f'Model "{name}" draws images from noise; --input needs an image-to-image model '
                            f"(pix2pix, cyclegan).")
    if source is None:
        raise GanbenchError(f'Model "{name}" translates images; give them with --input IMAGE_OR_FOLDER.')
    try:
        written = translate_files(model, tuple(checkpoint.meta["image_shape"]), Path(source), output)
    except OSError as exc:
        raise GanbenchError(f"Cannot write {exc.filename or output}: {exc.strerror or exc}.") from None
    print(f"translated {len(written)} image{'s' if len(written) != 1 else ''} from {source} into {output}")
    return 0


def write_grid(model, image_shape: tuple[int, int, int], n: int, seed: int, path: Path) -> None:
    """Draw ``n`` images ``CHUNK`` at a time, as 8-bit pixels, lay them out as one grid and write it as a PNG,
    atomically (the same layout as a run's grids).

    Refuses (one sentence) a grid that does not fit in the free memory, before drawing anything.
    """
    import torch

    from workbench.engine.memory import check_fits
    from workbench.engine.samples import generate, lay_out, to_pixels, write_png

    channels, height, width = image_shape
    columns = max(1, int(math.sqrt(n)))
    rows = -(-n // columns)
    shape = (rows * (height + PADDING) + PADDING, columns * (width + PADDING) + PADDING, 3)
    # the drawn pixels, the grid laid out from them and PIL's copy of it
    check_fits(3 * math.prod(shape), f"A grid of {n:,} images of {height}x{width}", torch.device("cpu"),
               "ask for fewer with -n")
    pixels = torch.empty((n, 3, height, width), dtype=torch.uint8)
    device = next(p for net in model.networks.values() for p in net.parameters()).device
    noise = torch.Generator().manual_seed(seed)
    for start in range(0, n, CHUNK):
        count = min(CHUNK, n - start)
        z = torch.randn(count, model.latent_dim, generator=noise).to(device)
        pixels[start:start + count] = to_pixels(generate(model, z)).cpu()
    write_png(lay_out(pixels, columns, PADDING), path)
