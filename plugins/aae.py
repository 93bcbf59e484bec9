"""The adversarial autoencoder of PyTorch-GAN's ``aae.py`` (Makhzani et al. 2016), D returning logits."""

from __future__ import annotations

import math

import torch
from torch import nn

from workbench.api import AdversarialLoss, GanModel, HyperParam, Metrics, ModelSpec, adam, hookimpl, training_params


class Encoder(nn.Module):
    def __init__(self, img_shape, latent_dim: int):
        super().__init__()
        self.model = nn.Sequential(
            nn.Linear(math.prod(img_shape), 512),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Linear(512, 512),
            nn.BatchNorm1d(512),
            nn.LeakyReLU(0.2, inplace=True),
        )
        self.mu = nn.Linear(512, latent_dim)
        self.logvar = nn.Linear(512, latent_dim)

    def forward(self, img, noise: torch.Tensor):
        x = self.model(img.flatten(1))
        mu, logvar = self.mu(x), self.logvar(x)
        return noise * torch.exp(logvar / 2) + mu  # the reparameterisation trick


class Decoder(nn.Module):
    def __init__(self, img_shape, latent_dim: int):
        super().__init__()
        self.img_shape = img_shape
        self.model = nn.Sequential(
            nn.Linear(latent_dim, 512),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Linear(512, 512),
            nn.BatchNorm1d(512),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Linear(512, math.prod(img_shape)),
            nn.Tanh(),
        )

    def forward(self, z):
        return self.model(z).view(z.shape[0], *self.img_shape)


class Discriminator(nn.Module):
    def __init__(self, latent_dim: int):
        super().__init__()
        self.model = nn.Sequential(
            nn.Linear(latent_dim, 512),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Linear(512, 256),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Linear(256, 1),
        )

    def forward(self, z):
        return self.model(z)


class AAE(GanModel):
    """Encoder and decoder trained against a discriminator on the latent code."""

    def __init__(self, img_shape, hp: dict):
        self.encoder, self.decoder = Encoder(img_shape, hp["latent_dim"]), Decoder(img_shape, hp["latent_dim"])
        self.D = Discriminator(hp["latent_dim"])
        super().__init__({"encoder": self.encoder, "decoder": self.decoder, "discriminator": self.D}, {},
                         hp["latent_dim"])
        self.hp = hp

    def make_optimizers(self) -> None:
        hp, device = self.hp, next(self.D.parameters()).device
        autoencoder = list(self.encoder.parameters()) + list(self.decoder.parameters())
        self.optimizers = {
            "generator": adam(autoencoder, hp["lr"], hp["b1"], hp["b2"], device),
            "discriminator": adam(self.D.parameters(), hp["lr"], hp["b1"], hp["b2"], device),
        }

    def generate(self, z):
        return self.decoder(z)

    cuda_graph_safe = True  # the same tensor work every step
    ema_network = "decoder"  # the generator of images: what an EMA averages and samples draw from
    d_sees_images = False  # D judges latent codes: nothing for an image augmentation to do

    def train_step(self, real: torch.Tensor, loss: AdversarialLoss) -> Metrics:
        w = self.hp["adv_weight"]
        # (1) Update the autoencoder: fool D with the code, reconstruct the image.
        opt_g = self.optimizers["generator"]
        opt_g.zero_grad(set_to_none=True)
        encoded = self.encoder(real, self.draw_noise(real.shape[0], real.device))
        decoded = self.decoder(encoded)
        self.D.requires_grad_(False)
        fake_logits = self.D(encoded)
        g_loss = w * loss.g_loss(fake_logits) + (1 - w) * torch.nn.functional.l1_loss(decoded, real)
        self.backward(g_loss, "generator")  # through the fp16 scaler under amp=fp16
        self.D.requires_grad_(True)
        self.optimizer_step("generator")
        # (2) Update D: the prior's samples are "real", the encoder's codes are "fake".
        opt_d = self.optimizers["discriminator"]
        opt_d.zero_grad(set_to_none=True)
        prior = self.draw_noise(real.shape[0], real.device)
        real_logits = self.D(prior)
        d_loss = 0.5 * loss.d_loss(real_logits, self.D(encoded.detach()))
        penalty = loss.penalty(self.D, prior, encoded.detach())
        if penalty is not None:
            d_loss = d_loss + penalty
        self.backward(d_loss, "discriminator")
        self.optimizer_step("discriminator")
        return {"d_loss": d_loss.detach(), "g_loss": g_loss.detach(),
                "d_real": loss.score(real_logits), "d_fake": loss.score(fake_logits)}


def build(hp: dict, img_shape) -> AAE:
    return AAE(img_shape, hp)


SPEC = ModelSpec(
    name="aae",
    description="adversarial autoencoder of PyTorch-GAN aae.py: latent 10, 0.001 adversarial + 0.999 L1",
    build=build,
    hyperparams=training_params(batch_size=64, lr=2e-4, epochs=200) + (
        HyperParam("latent_dim", "int", 10, "size of the latent code", min=1, max=4096),
        HyperParam("image_size", "int", 32, "side of the square images", min=4, max=256),
        HyperParam("adv_weight", "float", 0.001, "weight of the adversarial term in G's loss", min=0.0, max=1.0),
    ),
    dataset="fashion-mnist-test",
)


@hookimpl
def ganbench_register_models(register):
    register(SPEC)
