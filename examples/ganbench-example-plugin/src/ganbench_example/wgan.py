"""The Wasserstein GAN of Arjovsky et al. (2017), as PyTorch-GAN's ``wgan.py`` writes it.

A critic (a discriminator without a sigmoid) is updated on every batch and its
weights are clipped to [-c, c]; the generator is updated once every
``n_critic`` batches. Both use RMSprop. It shows a model with its own
``train_step`` and with training state (the critic's update count) that must
survive a resume: it lives in a buffer, so checkpoints carry it.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from workbench.api import AdversarialLoss, GanModel, HyperParam, Metrics, ModelSpec, hookimpl


class Generator(nn.Module):
    """gan.py's MLP generator with base width ``hidden`` (128 in the reference)."""

    def __init__(self, latent_dim: int, hidden: int, image_shape: tuple[int, int, int]):
        super().__init__()
        self.image_shape = image_shape
        widths = [latent_dim, hidden, 2 * hidden, 4 * hidden, 8 * hidden]
        layers: list[nn.Module] = []
        for i, (n_in, n_out) in enumerate(zip(widths, widths[1:])):
            layers.append(nn.Linear(n_in, n_out))
            if i > 0:
                layers.append(nn.BatchNorm1d(n_out, 0.8))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
        layers += [nn.Linear(widths[-1], math.prod(image_shape)), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.model(z).view(z.shape[0], *self.image_shape)


class Critic(nn.Module):
    """wgan.py's critic: an MLP with one unbounded output per image, and a count of its updates."""

    def __init__(self, hidden: int, image_shape: tuple[int, int, int]):
        super().__init__()
        self.model = nn.Sequential(
            nn.Linear(math.prod(image_shape), 4 * hidden),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Linear(4 * hidden, 2 * hidden),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Linear(2 * hidden, 1),
        )
        self.register_buffer("updates", torch.zeros((), dtype=torch.long))  # saved in every checkpoint

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model(images.flatten(1))


class WGAN(GanModel):
    """A critic updated every batch with clipped weights, a generator every ``n_critic`` batches."""

    def __init__(self, hp: dict, image_shape: tuple[int, int, int]):
        self.G = Generator(hp["latent_dim"], hp["hidden"], image_shape)
        self.critic = Critic(hp["hidden"], image_shape)
        super().__init__({"generator": self.G, "critic": self.critic}, {}, hp["latent_dim"])
        self.hp = hp
        self._updates: int | None = None  # the buffer's value, read from the device once

    def make_optimizers(self) -> None:
        lr = self.hp["lr"]
        self.optimizers = {"generator": torch.optim.RMSprop(self.G.parameters(), lr=lr),
                           "critic": torch.optim.RMSprop(self.critic.parameters(), lr=lr)}

    def generate(self, z: torch.Tensor) -> torch.Tensor:
        return self.G(z)

    def train_step(self, real: torch.Tensor, loss: AdversarialLoss) -> Metrics:
        if self._updates is None:  # first step of this process, perhaps after a resume: one host sync
            self._updates = int(self.critic.updates)
        # (1) Update the critic, then clip its weights (the Lipschitz constraint of the paper).
        opt_c = self.optimizers["critic"]
        opt_c.zero_grad(set_to_none=True)
        fake = self.G(self.draw_noise(real.shape[0], real.device)).detach()
        real_logits, fake_logits = self.critic(real), self.critic(fake)
        d_loss = loss.d_loss(real_logits, fake_logits)
        penalty = loss.penalty(self.critic, real, fake)
        if penalty is not None:
            d_loss = d_loss + penalty
        d_loss.backward()
        opt_c.step()
        clip = self.hp["clip_value"]
        with torch.no_grad():
            for p in self.critic.parameters():
                p.clamp_(-clip, clip)
            self.critic.updates += 1
        self._updates += 1
        g_loss = loss.g_loss(fake_logits.detach())  # what G's loss is now, reported between G's updates
        # (2) Update the generator every n_critic batches.
        if self._updates % self.hp["n_critic"] == 0:
            opt_g = self.optimizers["generator"]
            opt_g.zero_grad(set_to_none=True)
            self.critic.requires_grad_(False)
            g_loss = loss.g_loss(self.critic(self.G(self.draw_noise(real.shape[0], real.device))))
            g_loss.backward()
            self.critic.requires_grad_(True)
            opt_g.step()
        return {"d_loss": d_loss.detach(), "g_loss": g_loss.detach(),
                "d_real": loss.score(real_logits), "d_fake": loss.score(fake_logits)}


def build(hp: dict, image_shape: tuple[int, int, int]) -> WGAN:
    return WGAN(hp, image_shape)


SPEC = ModelSpec(
    name="wgan",
    description="Wasserstein GAN of PyTorch-GAN wgan.py: MLP critic with clipped weights, RMSprop, 5 critic steps",
    build=build,
    hyperparams=(
        HyperParam("batch_size", "int", 64, "images per training step", min=2, max=65536),
        HyperParam("lr", "float", 5e-5, "RMSprop learning rate of both networks", min=1e-8, max=1.0),
        HyperParam("epochs", "int", 200, "passes over the dataset (unless --steps is given)", min=1),
        HyperParam("n_critic", "int", 5, "critic updates per generator update", min=1, max=100),
        HyperParam("clip_value", "float", 0.01, "the critic's weights are clipped to [-c, c]", min=1e-6, max=10.0),
        HyperParam("latent_dim", "int", 100, "size of the noise vector", min=1, max=4096),
        HyperParam("hidden", "int", 128, "base width: G is hidden-2x-4x-8x wide, the critic 4x-2x", min=1, max=1024),
        HyperParam("image_size", "int", 28, "side of the square images", min=4, max=256),
    ),
    dataset="fashion-mnist-test",
    loss="wasserstein",
)


@hookimpl
def ganbench_register_models(register):
    register(SPEC)
