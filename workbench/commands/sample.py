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
    parser.add_argument("--class", dest="class_name", metavar="NAME_OR_INDEX",
                        help="a conditional model draws only this class (default: one row per class)")


def main(args) -> int:
    from workbench.engine.inference import draw_samples
    from workbench.engine.samples import save_grid
    from workbench.plugins import load_plugins

    if args.n < 1:
        raise GanbenchError(f"-n must be at least 1; got {args.n}.")
    drawn = draw_samples(Path(args.checkpoint), load_plugins(), args.n, args.seed, args.device,
                         class_name=args.class_name, by_class=True)
    output = Path(args.output)
    try:
        save_grid(drawn.images, output, drawn.per_row)
    except OSError as exc:
        raise GanbenchError(f"Cannot write {output}: {exc.strerror or exc}.") from None
    count = drawn.images.shape[0]
    if args.class_name is not None:
        print(f"wrote {count} samples of class {drawn.rows[0]} to {output}")
    elif drawn.rows:
        print(f"wrote {count} samples to {output}, one row per class: {', '.join(drawn.rows)}")
    else:
        print(f"wrote {count} samples to {output}")
    return 0
