"""The floor of a fid protocol: real images that were never trained on, scored as `ganbench eval` scores samples.

`ganbench eval RUN --metric fid -n N` compares N generated images with every image of the run's training
split (NVlabs' ``fidNk_full``). This script puts N real images of another split or dataset in the generated
images' place, against the same training split at the same size, with the same detector and the same cached
statistics, so its number is the best that protocol can give a generator of that data:

    python examples/real_fid.py fashion-mnist-test --real fashion-mnist:train -n 10000 --size 32

scores the first 10,000 of Fashion-MNIST's 60,000 training images against the 10,000 test images that ship
with ganbench (the quick start's training set), as `ganbench eval` does the quick start's samples.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from workbench.api import resize_uint8
from workbench.data.loading import load_images
from workbench.host.manager import load_plugins
from workbench.quality.detector import InceptionDetector, find_detector, unavailable_reason
from workbench.quality.inception import (fid_from_features, inception_reference, kernel_inception_distance,
                                         protocol_name)
from workbench.rundir.config import RunConfig


def images_of(plugins, name: str, size: int, data_root: str | None) -> torch.Tensor:
    """uint8 images of ``DATASET[:SPLIT]`` (the training split by default) at ``size`` px."""
    dataset, _, split = name.partition(":")
    # the dataset reader reads only the dataset, its folder and the download flag of a run's configuration
    config = RunConfig(model="dcgan", dataset=dataset, loss="bce", hyperparams={}, data_root=data_root)
    images = load_images(config, plugins, size, split or "train").images
    return images if images.shape[-1] == size else resize_uint8(images, size)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("training", help="the dataset whose training split is the reference, as in a run")
    parser.add_argument("--real", required=True, help="DATASET[:SPLIT] whose first N images take the samples' place")
    parser.add_argument("-n", type=int, default=10_000)
    parser.add_argument("--size", type=int, default=32, help="the model's image size (default 32)")
    parser.add_argument("--data-root", help="folder of the --real dataset's files, if not found by itself")
    args = parser.parse_args()
    found = find_detector()
    if found is None:
        raise SystemExit(f"real_fid.py: {unavailable_reason()}")
    plugins = load_plugins()
    detector = InceptionDetector(found, torch.device("cpu"))
    reference = inception_reference(images_of(plugins, args.training, args.size, None), args.training, detector)
    real = images_of(plugins, args.real, args.size, args.data_root)[: args.n]
    started = time.monotonic()
    features = detector.features(real)
    seconds = time.monotonic() - started
    print(json.dumps({
        "reference": reference.describe(), "detector": detector.describe(), "images": int(real.shape[0]),
        "protocols": {"fid": protocol_name("fid", real.shape[0]), "kid": protocol_name("kid", real.shape[0])},
        "fid": fid_from_features(features, reference.mean, reference.cov),
        "kid": kernel_inception_distance(reference.features, features),
        "seconds_for_the_images": round(seconds, 1)}, indent=2))


if __name__ == "__main__":
    main()
