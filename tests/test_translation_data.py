"""Image-to-image data: pix2pix's and CycleGAN's folder layouts read from real PNGs, the test split kept out of
training, the direction option, the unpaired domain's own order per epoch, and the one-sentence refusals."""

from __future__ import annotations

import torch

from translation_folders import cyclegan_folder, pix2pix_folder
from workbench.data.device import DeviceImages
from workbench.data.translation_folders import folder_layout
from workbench.host.registry import DataRequest
from workbench.host.translation import DOMAIN_B, SOURCE, orient

SHAPES = dict(image_size=28)


def load(plugins, root, split="train"):
    return plugins.registry.dataset("folder").load(DataRequest(root, False, 28, split, cache_dir=root.parent / "c"))


def test_the_pix2pix_layout_gives_targets_b_with_sources_a_and_keeps_the_test_split_out(plugins, tmp_path,
                                                                                          fashion_images):
    root = pix2pix_folder(tmp_path / "pairs", fashion_images, train=6, test=3)
    assert folder_layout(root) == "pix2pix"
    train, test = load(plugins, root), load(plugins, root, "test")
    assert train.images.shape == (6, 3, 28, 28) and train.fields[SOURCE].shape == (6, 3, 28, 28)
    assert test.images.shape[0] == 3
    assert torch.equal(train.images[:, 0], fashion_images[:6])  # B, the right half
    assert torch.equal(train.fields[SOURCE][:, 0], 255 - fashion_images[:6])  # A, the left half
    assert torch.equal(test.images[:, 0], fashion_images[6:9])
    trained = {bytes(image.numpy()) for image in train.images}
    assert not trained & {bytes(image.numpy()) for image in test.images}  # no test pair is trained on


def test_a_pix2pix_folder_with_val_but_no_test_uses_val_as_its_test_split(plugins, tmp_path, fashion_images):
    root = pix2pix_folder(tmp_path / "pairs", fashion_images, train=4, test=2, split_names=("train", "val"))
    assert load(plugins, root, "test").images.shape[0] == 2


def test_the_cyclegan_layout_gives_two_domains_of_their_own_sizes(plugins, tmp_path, fashion_images):
    root = cyclegan_folder(tmp_path / "cycle", fashion_images[:7], fashion_images[100:104], test=2)
    assert folder_layout(root) == "cyclegan"
    train, test = load(plugins, root), load(plugins, root, "test")
    assert train.images.shape[0] == 5 and train.fields[DOMAIN_B].shape[0] == 2
    assert test.images.shape[0] == 2 and test.fields[DOMAIN_B].shape[0] == 2
    assert torch.equal(train.images[:, 0], fashion_images[:5])
    assert torch.equal(test.fields[DOMAIN_B][:, 0], fashion_images[102:104])


def test_direction_b_to_a_swaps_the_two_sides(plugins, tmp_path, fashion_images):
    root = pix2pix_folder(tmp_path / "pairs", fashion_images, train=4, test=1)
    data = load(plugins, root)
    swapped = orient(data, "BtoA", "folder")
    assert torch.equal(swapped.images, data.fields[SOURCE]) and torch.equal(swapped.fields[SOURCE], data.images)
    assert orient(data, "AtoB", "folder") is data


def test_a_plain_folder_stays_a_plain_folder(plugins, tmp_path, fashion_images):
    from translation_folders import write_png

    for i in range(3):
        write_png(fashion_images[i], tmp_path / "plain" / f"{i}.png")
    assert folder_layout(tmp_path / "plain") == "plain"
    assert load(plugins, tmp_path / "plain").fields == {}


def _domain_batches(data: DeviceImages, epoch: int, start: int = 0):
    source = data.field_tensors((DOMAIN_B,))[DOMAIN_B]
    return [source[idx] for idx in data.batch_indices(epoch, start)]


def test_the_unpaired_domain_has_its_own_seeded_order_each_epoch_and_resumes_mid_epoch():
    a = torch.arange(12, dtype=torch.uint8).view(12, 1, 1, 1).expand(12, 1, 2, 2).contiguous()
    b = (100 + torch.arange(5, dtype=torch.uint8)).view(5, 1, 1, 1).expand(5, 1, 2, 2).contiguous()
    data = DeviceImages(a, 4, torch.device("cpu"), seed=3, image_fields={DOMAIN_B: b})
    epoch0 = _domain_batches(data, 0)
    values = torch.cat([x[:, 0, 0, 0] for x in epoch0])
    shown = ((values + 1) * 255 / 2).round().long() - 100
    assert sorted(shown.tolist()[:5]) == [0, 1, 2, 3, 4]  # a whole permutation of B before any repeats
    assert len(epoch0) == 3 and all(x.shape == (4, 1, 2, 2) for x in epoch0)
    again = DeviceImages(a, 4, torch.device("cpu"), seed=3, image_fields={DOMAIN_B: b})
    assert all(torch.equal(x, y) for x, y in zip(epoch0, _domain_batches(again, 0)))  # seeded
    assert torch.equal(_domain_batches(again, 0, start=2)[0], epoch0[2])  # a resume mid-epoch sees the same
    epoch1 = _domain_batches(data, 1)
    assert not all(torch.equal(x, y) for x, y in zip(epoch0, epoch1))  # each epoch its own order
    other_seed = DeviceImages(a, 4, torch.device("cpu"), seed=4, image_fields={DOMAIN_B: b})
    assert not all(torch.equal(x, y) for x, y in zip(epoch0, _domain_batches(other_seed, 0)))


def test_a_paired_model_refuses_an_unpaired_folder_and_an_unpaired_one_a_paired_folder(cli, tmp_path,
                                                                                        fashion_images):
    pairs = pix2pix_folder(tmp_path / "pairs", fashion_images, train=8, test=2)
    cycle = cyclegan_folder(tmp_path / "cycle", fashion_images[:8], fashion_images[100:108], test=2)
    for model, root, says in (("pix2pix", cycle, "holds two unpaired domains"),
                              ("cyclegan", pairs, "holds paired images")):
        done = cli("run", "--plugin", model, "--data-root", str(root), "--set", "image_size=32", "--steps", "1",
                   "--batch-size", "2")
        assert done.returncode != 0
        assert "Traceback" not in done.stderr
        line = done.stderr.strip().splitlines()[-1]
        assert says in line and line.count(". ") == 0, line  # one sentence
        assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())  # refused before a folder


def test_folder_xflip_mirrors_both_sides_of_a_pair(plugins, tmp_path, fashion_images):
    root = pix2pix_folder(tmp_path / "pairs", fashion_images, train=3, test=1)
    data = plugins.registry.dataset("folder-xflip").load(DataRequest(root, False, 28, "train",
                                                                      cache_dir=tmp_path / "c"))
    assert data.images.shape[0] == data.fields[SOURCE].shape[0] == 6
    assert torch.equal(data.fields[SOURCE][3:], data.fields[SOURCE][:3].flip(-1))
    assert torch.equal(data.images[4], data.images[1].flip(-1))


def test_train_images_keeps_each_source_with_its_target(plugins, tmp_path, fashion_images):
    from workbench.data.loading import training_subset

    data = load(plugins, pix2pix_folder(tmp_path / "pairs", fashion_images, train=8, test=1))
    subset = training_subset(data, 3, "folder")
    assert subset.images.shape[0] == subset.fields[SOURCE].shape[0] == 3
    assert torch.equal(subset.fields[SOURCE], 255 - subset.images)  # A is the inverted B in these files
