"""The auxiliary-classifier GAN of PyTorch-GAN's ``acgan.py`` (Odena et al. 2017), D returning logits.

As in the reference: G multiplies the noise by a learned label embedding, then a
linear layer and two upsample-conv stages (BatchNorm, LeakyReLU) reach the image
size; D is four strided 3x3 conv blocks (LeakyReLU, Dropout2d 0.25, BatchNorm
but for the first) with two heads: the adversarial score and a classifier over
the classes. G is updated first, on half of (adversarial + auxiliary) loss; D
on a quarter of each of its four terms (adversarial and auxiliary, real and
fake). Two departures, both for numerical health and both stated: the heads
return logits (the reference applies Sigmoid and Softmax and then
``CrossEntropyLoss``, a softmax applied twice), and the adversarial part is the
run's loss (``bce`` is the reference's ``BCELoss``); with ``wgan-gp`` its
penalty is added to D's loss. The number of classes comes from the dataset.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from workbench.api import (AdversarialLoss, ConditionalGAN, DataInfo, HyperParam, Metrics, ModelSpec, hookimpl,
                           training_params)


class Generator(nn.Module):
    def __init__(self, latent_dim: int, n_classes: int, channels: int, img_size: int):
        super().__init__()
        self.label_emb = nn.Embedding(n_classes, latent_dim)
        self.init_size = img_size // 4  # two upsamplings reach the image size
        self.l1 = nn.Sequential(nn.Linear(latent_dim, 128 * self.init_size ** 2))
        self.conv_blocks = nn.Sequential(
            nn.BatchNorm2d(128),
            nn.Upsample(scale_factor=2),
            nn.Conv2d(128, 128, 3, stride=1, padding=1),
            nn.BatchNorm2d(128, 0.8),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Upsample(scale_factor=2),
            nn.Conv2d(128, 64, 3, stride=1, padding=1),
            nn.BatchNorm2d(64, 0.8),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(64, channels, 3, stride=1, padding=1),
            nn.Tanh(),
        )

    def forward(self, noise, labels):
        gen_input = torch.mul(self.label_emb(labels), noise)
        out = self.l1(gen_input).view(noise.shape[0], 128, self.init_size, self.init_size)
        return self.conv_blocks(out)


def _discriminator_block(in_filters: int, out_filters: int, bn: bool = True) -> list[nn.Module]:
    block: list[nn.Module] = [nn.Conv2d(in_filters, out_filters, 3, 2, 1), nn.LeakyReLU(0.2, inplace=True),
                              nn.Dropout2d(0.25)]
    if bn:
        block.append(nn.BatchNorm2d(out_filters, 0.8))
    return block


class Discriminator(nn.Module):
    def __init__(self, n_classes: int, channels: int, img_size: int):
        super().__init__()
        self.conv_blocks = nn.Sequential(
            *_discriminator_block(channels, 16, bn=False),
            *_discriminator_block(16, 32),
            *_discriminator_block(32, 64),
            *_discriminator_block(64, 128),
        )
        ds_size = img_size
        for _ in range(4):  # the side after four stride-2 convolutions (img_size // 16 in the reference's 32 px)
            ds_size = (ds_size + 1) // 2
        self.adv_layer = nn.Linear(128 * ds_size ** 2, 1)  # logits: the run's loss applies its own link
        self.aux_layer = nn.Linear(128 * ds_size ** 2, n_classes)  # class logits for cross-entropy

    def forward(self, img):
        out = self.conv_blocks(img).flatten(1)
        return self.adv_layer(out), self.aux_layer(out)


def weights_init_normal(m: nn.Module) -> None:
    """N(0, 0.02) for convolutions, N(1, 0.02) for BatchNorm scales, as in the reference."""
    name = type(m).__name__
    if "Conv" in name:
        nn.init.normal_(m.weight.data, 0.0, 0.02)
    elif "BatchNorm2d" in name:
        nn.init.normal_(m.weight.data, 1.0, 0.02)
        nn.init.constant_(m.bias.data, 0.0)


class ACGAN(ConditionalGAN):
    """G(z, labels); D(images) -> (adversarial logits, class logits); the auxiliary loss in both updates."""

    cuda_graph_safe = True

    def train_step(self, real: torch.Tensor, loss: AdversarialLoss, labels: torch.Tensor) -> Metrics:
        n, device = real.shape[0], real.device
        gen_labels = self.draw_labels(n, device)
        fake = self.G(self.draw_noise(n, device), gen_labels)

        # (1) Update G: D should call the fakes real and classify them as the labels they were drawn for.
        opt_g = self.optimizers["generator"]
        opt_g.zero_grad(set_to_none=True)
        self.D.requires_grad_(False)
        validity, pred_label = self._d(fake)
        g_loss = 0.5 * (loss.g_loss(validity) + F.cross_entropy(pred_label, gen_labels))
        self.backward(g_loss, "generator")
        self.D.requires_grad_(True)
        self.optimizer_step("generator")

        # (2) Update D: real and fake apart, each judged and classified.
        opt_d = self.optimizers["discriminator"]
        opt_d.zero_grad(set_to_none=True)
        fake = fake.detach()
        real_pred, real_aux = self._d(real)  # through the run's augmentation, as every image D sees
        fake_pred, fake_aux = self._d(fake)
        self.augment.observe(real_pred)
        d_loss = 0.25 * (loss.d_loss(real_pred, fake_pred)
                         + F.cross_entropy(real_aux, labels) + F.cross_entropy(fake_aux, gen_labels))

        def critic(images):  # D's adversarial head, for the penalties
            return self._d(images)[0]

        for term in (loss.penalty(critic, real, fake), self.penalties.term(self.step, real, fake, critic)):
            if term is not None:
                d_loss = d_loss + term
        self.backward(d_loss, "discriminator")
        self.optimizer_step("discriminator")
        return {"d_loss": d_loss.detach(), "g_loss": g_loss.detach(), "d_real": loss.score(real_pred),
                "d_fake": loss.score(validity), **self.penalties.latest}


def build(hp: dict, data: DataInfo) -> ACGAN:
    if hp["image_size"] % 4:
        raise ValueError(f"image_size must be a multiple of 4 (two upsamplings), not {hp['image_size']}")
    n_classes = max(data.n_classes, 1)  # an unlabelled dataset still builds: the engine refuses it in one sentence
    G = Generator(hp["latent_dim"], n_classes, data.channels, hp["image_size"])
    D = Discriminator(n_classes, data.channels, hp["image_size"])
    G.apply(weights_init_normal)
    D.apply(weights_init_normal)
    model = ACGAN(G, D, hp, latent_dim=hp["latent_dim"], n_classes=data.n_classes)
    model.channels_last = True  # 1.35x faster per step on this CPU (measured A/B, one thread)
    return model


SPEC = ModelSpec(
    name="acgan",
    description="auxiliary-classifier GAN of PyTorch-GAN acgan.py: conv G with the label embedding multiplied "
                "into the noise, D with adversarial and class heads; trains on the dataset's labels",
    build=build,
    hyperparams=training_params(batch_size=64, lr=2e-4, epochs=200) + (
        HyperParam("latent_dim", "int", 100, "size of the noise vector", min=1, max=4096),
        HyperParam("image_size", "int", 32, "side of the square images (a multiple of 4)", min=8, max=256),
    ),
    dataset="fashion-mnist-test",
)


@hookimpl
def ganbench_register_models(register):
    register(SPEC)
