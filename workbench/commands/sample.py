"""``ganbench sample``: draw images from a checkpoint into a PNG grid; needs no dataset."""

from __future__ import annotations

from pathlib import Path

from workbench.errors import GanbenchError

NAME = "sample"
HELP = "draw images from a checkpoint into a PNG grid"


def add_arguments(parser) -> None:
    parser.add_argument("checkpoint", metavar="RUN_DIR_OR_CHECKPOINT")
    parser.add_argument("-n", type=int, default=64, help="number of images (default 64)")
    parser.add_argument("-o", "--output", default="samples.png", help="PNG file to write (default samples.png)")
    parser.add_argument("--seed", type=int, default=0, help="noise seed (default 0)")
    parser.add_argument("--device", default="auto", help="auto (default), cpu, cuda or mps")


def main(args) -> int:
    from workbench.engine.inference import sample_images
    from workbench.engine.samples import save_grid
    from workbench.plugins import load_plugins

    if args.n < 1:
        raise GanbenchError(f"-n must be at least 1; got {args.n}.")
    images = sample_images(Path(args.checkpoint), load_plugins(), args.n, args.seed, args.device)
    output = Path(args.output)
    try:
        save_grid(images, output)
    except OSError as exc:
        raise GanbenchError(f"Cannot write {output}: {exc.strerror or exc}.") from None
    print(f"wrote {args.n} samples to {output}")
    return 0
