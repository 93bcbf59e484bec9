"""The conditional GAN of PyTorch-GAN's ``cgan.py`` (Mirza & Osindero 2014), D returning logits.

As in the reference: G takes the noise concatenated with a learned label
embedding (``n_classes`` wide) through the MLP of ``gan.py``; D takes the
flattened image concatenated with its own label embedding through
512-512-512-1 with dropout 0.4. The reference trains with a least-squares loss
(``MSELoss``), G first, D's loss halved; so does this plugin (``lsgan`` by
default, and any other adversarial loss on the same logits). The number of
classes comes from the dataset (``data.n_classes``; the reference's
``n_classes=10`` is Fashion-MNIST's and MNIST's count).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from workbench.api import ConditionalGAN, DataInfo, HyperParam, ModelSpec, hookimpl, training_params


def _block(n_in: int, n_out: int, normalize: bool = True) -> list[nn.Module]:
    layers: list[nn.Module] = [nn.Linear(n_in, n_out)]
    if normalize:
        layers.append(nn.BatchNorm1d(n_out, 0.8))  # eps=0.8, exactly as cgan.py writes it
    layers.append(nn.LeakyReLU(0.2, inplace=True))
    return layers


class Generator(nn.Module):
    def __init__(self, latent_dim: int, n_classes: int, img_shape: tuple[int, int, int]):
        super().__init__()
        self.img_shape = tuple(img_shape)
        self.label_emb = nn.Embedding(n_classes, n_classes)
        self.model = nn.Sequential(
            *_block(latent_dim + n_classes, 128, normalize=False),
            *_block(128, 256),
            *_block(256, 512),
            *_block(512, 1024),
            nn.Linear(1024, math.prod(img_shape)),
            nn.Tanh(),
        )

    def forward(self, z, labels):
        gen_input = torch.cat((self.label_emb(labels), z), -1)
        return self.model(gen_input).view(z.shape[0], *self.img_shape)


class Discriminator(nn.Module):
    def __init__(self, n_classes: int, img_shape: tuple[int, int, int]):
        super().__init__()
        self.label_embedding = nn.Embedding(n_classes, n_classes)
        self.model = nn.Sequential(
            nn.Linear(n_classes + math.prod(img_shape), 512),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Linear(512, 512),
            nn.Dropout(0.4),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Linear(512, 512),
            nn.Dropout(0.4),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Linear(512, 1),  # logits: the loss applies its own link (MSE on them is the reference's LSGAN)
        )

    def forward(self, img, labels):
        return self.model(torch.cat((img.flatten(1), self.label_embedding(labels)), -1))


def build(hp: dict, data: DataInfo) -> ConditionalGAN:
    # An unlabelled dataset (n_classes 0) still builds: the engine then refuses it in its own sentence.
    n_classes = max(data.n_classes, 1)
    return ConditionalGAN(Generator(hp["latent_dim"], n_classes, data), Discriminator(n_classes, data), hp,
                          latent_dim=hp["latent_dim"], n_classes=data.n_classes, d_first=False, d_scale=0.5)


SPEC = ModelSpec(
    name="cgan",
    description="conditional MLP GAN of PyTorch-GAN cgan.py: label embedding beside the noise in G and beside "
                "the image in D; trains on the dataset's labels",
    build=build,
    hyperparams=training_params(batch_size=64, lr=2e-4, epochs=200) + (
        HyperParam("latent_dim", "int", 100, "size of the noise vector", min=1, max=4096),
        HyperParam("image_size", "int", 32, "side of the square images", min=4, max=256),
    ),
    dataset="fashion-mnist-test",
    loss="lsgan",
)


@hookimpl
def ganbench_register_models(register):
    register(SPEC)
