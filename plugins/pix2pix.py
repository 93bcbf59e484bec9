"""pix2pix (Isola et al. 2017) as PyTorch-GAN's ``implementations/pix2pix/pix2pix.py`` trains it.

A U-Net G translates a source image A into the target B; a PatchGAN D judges (image, source) pairs patch by
patch. G's loss is the adversarial one (MSE, ``--loss lsgan``) plus 100 times the L1 distance to the target;
D's is half the sum of its real and fake terms. Trains on paired images: the ``folder`` dataset in pix2pix's
layout (``train/``, ``test/`` of A|B files), ``--set direction=BtoA`` to translate the right half into the left.

Besides the four metrics, ``l1`` (the training batch's L1 to its targets) and, every ``val_every`` steps on the
first ``val_pairs`` held-out pairs (the test split, never trained on), ``val_l1`` and ``val_psnr`` (dB, images
in [0, 1]). Translations (grids, ``ganbench sample --input``, the held-out metrics) are drawn without dropout.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from plugins.i2i_networks import PatchDiscriminator, UNetGenerator, init_normal
from workbench.api import GanModel, HyperParam, ModelSpec, adam, hookimpl, training_params


def psnr(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The mean peak signal-to-noise ratio in dB of images in [-1, 1], each taken to [0, 1]."""
    mse = ((output - target) / 2).square().flatten(1).mean(1).clamp(min=1e-10)
    return (10 * torch.log10(1 / mse)).mean()


class Pix2Pix(GanModel):
    batch_fields = ("source",)
    metric_keys = ("l1", "val_l1", "val_psnr")
    higher_is_better = ("val_psnr",)
    d_sees_images = False  # D judges (image, source) pairs: an augmentation made for single images has no place
    ema_network = "generator"

    def __init__(self, G: torch.nn.Module, D: torch.nn.Module, hp: dict):
        super().__init__({"generator": G, "discriminator": D}, {}, latent_dim=0)
        self.G, self.D, self.hp = G, D, hp
        self._val: dict[str, torch.Tensor] | None = None  # the last held-out measurement

    def make_optimizers(self) -> None:
        device, hp = next(self.G.parameters()).device, self.hp
        self.optimizers = {"generator": adam(self.G.parameters(), hp["lr"], hp["b1"], hp["b2"], device),
                           "discriminator": adam(self.D.parameters(), hp["lr"], hp["b1"], hp["b2"], device)}

    def generate(self, z: torch.Tensor, source: torch.Tensor | None = None) -> torch.Tensor:
        if source is None:
            raise ValueError("pix2pix translates images: call generate(z, source=images)")
        training = self.G.training
        self.G.train(False)  # no dropout: a translation draws no random numbers, so grids never move training
        try:
            return self.G(source)
        finally:
            self.G.train(training)

    def train_step(self, real: torch.Tensor, loss, source: torch.Tensor):
        # (1) Update G: fool D on (fake, source), and stay close to the target in L1.
        self.optimizers["generator"].zero_grad(set_to_none=True)
        self.D.requires_grad_(False)
        fake = self.G(source)
        fake_logits = self.D(fake, source)
        l1 = F.l1_loss(fake, real)
        g_loss = loss.g_loss(fake_logits) + self.hp["lambda_pixel"] * l1
        self.backward(g_loss, "generator")
        self.D.requires_grad_(True)
        self.optimizer_step("generator")
        # (2) Update D: real pairs against the fakes just made.
        self.optimizers["discriminator"].zero_grad(set_to_none=True)
        real_logits = self.D(real, source)
        fake_logits_d = self.D(fake.detach(), source)
        d_loss = 0.5 * loss.d_loss(real_logits, fake_logits_d)
        self.backward(d_loss, "discriminator")
        self.optimizer_step("discriminator")
        return {"d_loss": d_loss.detach(), "g_loss": g_loss.detach(), "d_real": loss.score(real_logits),
                "d_fake": loss.score(fake_logits), "l1": l1.detach(), **self.held_out_metrics()}

    @torch.no_grad()
    def held_out_metrics(self) -> dict[str, torch.Tensor]:
        """``val_l1`` and ``val_psnr`` on the first ``val_pairs`` held-out pairs, measured every ``val_every``
        steps (the last measurement in between)."""
        if self._val is None or self.step % self.hp["val_every"] == 0:
            n = self.hp["val_pairs"]
            source, target = self.held_out["source"][:n], self.held_out["images"][:n]
            output = self.generate(torch.zeros(source.shape[0], 0, device=source.device), source=source)
            self._val = {"val_l1": F.l1_loss(output, target), "val_psnr": psnr(output, target)}
        return self._val


def build(hp: dict, data) -> Pix2Pix:
    if data.size & (data.size - 1) or data.size < 32:
        raise ValueError(f"the U-Net needs a power-of-two image side of at least 32, not {data.size}")
    G = UNetGenerator(data.channels, data.size, hp["ngf"])
    D = PatchDiscriminator(data.channels, hp["ndf"], paired=True)
    G.apply(init_normal)
    D.apply(init_normal)
    return Pix2Pix(G, D, hp)


SPEC = ModelSpec(
    name="pix2pix",
    description="pix2pix of PyTorch-GAN: U-Net G, PatchGAN D on (image, source), MSE + 100 L1; paired folders",
    build=build,
    hyperparams=training_params(batch_size=16, lr=2e-4, epochs=200) + (
        HyperParam("image_size", "int", 32, "side of the square images (a power of two)",
                   choices=(32, 64, 128, 256, 512)),
        HyperParam("ngf", "int", 64, "U-Net width of the first level (doubling to 8 times that)", min=1, max=1024),
        HyperParam("ndf", "int", 64, "PatchGAN discriminator feature maps", min=1, max=1024),
        HyperParam("lambda_pixel", "float", 100.0, "weight of the L1 distance to the target in G's loss",
                   min=0.0, max=1e6),
        HyperParam("val_pairs", "int", 64, "held-out pairs of val_l1 and val_psnr", min=1, max=256),
        HyperParam("val_every", "int", 20, "measure val_l1 and val_psnr every N steps", min=1),
    ),
    dataset="folder",
    loss="lsgan",
)


@hookimpl
def ganbench_register_models(register):
    register(SPEC)
