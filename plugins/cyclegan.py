"""CycleGAN (Zhu et al. 2017) as PyTorch-GAN's ``implementations/cyclegan/cyclegan.py`` trains it.

Two ResNet generators, G_AB and G_BA, and two PatchGAN discriminators, D_A and D_B, on two unpaired domains
(the ``folder`` dataset in CycleGAN's layout: ``trainA/``, ``trainB/``, ``testA/``, ``testB/``). G's loss: the
adversarial terms of both directions (MSE, ``--loss lsgan``), 10 times the cycle loss ``|G_BA(G_AB(a)) - a|``
(and for b) and 5 times the identity loss ``|G_BA(a) - a|`` (and for b), each averaged over the two domains.
Each D is shown the fakes through a 50-image replay buffer, checkpointed with the rest (``extra_state``). The
learning rates stay constant, then fall linearly to zero (PyTorch-GAN's ``LambdaLR``): here counted in thousands
of images seen (``decay_start_kimg``, ``decay_kimg``), so a resumed run continues the schedule from its count.

Metrics besides the four: ``cycle_a``, ``cycle_b``, ``identity_a``, ``identity_b`` of the training batch, and
every ``fd_every`` steps on the held-out domains (the test split) ``fd_b``, the Fréchet distance of G_AB's
translations of test A to test B, and ``fd_a``, of G_BA's translations of test B to test A, in 8x8 grey pixel
features (``plugins.i2i_networks.pixel_fd``; the untranslated inputs' distance is the baseline to beat).
"""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F

from plugins.i2i_networks import PatchDiscriminator, ReplayBuffer, ResNetGenerator, init_normal, pixel_fd
from workbench.api import GanModel, HyperParam, ModelSpec, adam, hookimpl, training_params


def lr_factor(kimg: float, start: float, length: float) -> float:
    """PyTorch-GAN's LambdaLR in thousands of images: 1 until ``start``, then linearly down to 0 over ``length``
    (``length`` 0: no decay)."""
    if length <= 0:
        return 1.0
    return max(0.0, 1.0 - max(0.0, kimg - start) / length)


class CycleGAN(GanModel):
    batch_fields = ("domain_b",)
    metric_keys = ("cycle_a", "cycle_b", "identity_a", "identity_b", "fd_a", "fd_b")
    ema_network = None
    d_sees_images = True

    def __init__(self, G_AB, G_BA, D_A, D_B, hp: dict, image_shape: tuple[int, int, int]):
        super().__init__({"G_AB": G_AB, "G_BA": G_BA, "D_A": D_A, "D_B": D_B}, {}, latent_dim=0)
        self.G_AB, self.G_BA, self.D_A, self.D_B, self.hp = G_AB, G_BA, D_A, D_B, hp
        self.extra_state = {"fake_a_buffer": ReplayBuffer(image_shape, hp["buffer_size"]),
                            "fake_b_buffer": ReplayBuffer(image_shape, hp["buffer_size"])}
        self._fd: dict[str, torch.Tensor] | None = None  # the last held-out measurement

    def to(self, device):
        super().to(device)
        for buffer in self.extra_state.values():
            buffer.to(device)
        return self

    def make_optimizers(self) -> None:
        device, hp = next(self.G_AB.parameters()).device, self.hp
        generators = itertools.chain(self.G_AB.parameters(), self.G_BA.parameters())
        self.optimizers = {"generator": adam(generators, hp["lr"], hp["b1"], hp["b2"], device),
                           "discriminator_a": adam(self.D_A.parameters(), hp["lr"], hp["b1"], hp["b2"], device),
                           "discriminator_b": adam(self.D_B.parameters(), hp["lr"], hp["b1"], hp["b2"], device)}

    def generate(self, z: torch.Tensor, source: torch.Tensor | None = None, inverse: bool = False) -> torch.Tensor:
        """A → B of ``source`` (B → A with ``inverse``)."""
        if source is None:
            raise ValueError("CycleGAN translates images: call generate(z, source=images)")
        return (self.G_BA if inverse else self.G_AB)(source)

    def train_step(self, real: torch.Tensor, loss, domain_b: torch.Tensor):
        real_a, real_b, hp = real, domain_b, self.hp
        factor = lr_factor(self.images_seen / 1000, hp["decay_start_kimg"], hp["decay_kimg"])
        for opt in self.optimizers.values():
            for group in opt.param_groups:
                group["lr"] = hp["lr"] * factor
        # (1) Update both generators: fool both Ds, come back to the start (cycle), leave the target alone (identity).
        self.optimizers["generator"].zero_grad(set_to_none=True)
        self.D_A.requires_grad_(False)
        self.D_B.requires_grad_(False)
        identity_a = F.l1_loss(self.G_BA(real_a), real_a)
        identity_b = F.l1_loss(self.G_AB(real_b), real_b)
        fake_b, fake_a = self.G_AB(real_a), self.G_BA(real_b)
        fake_b_logits = self.D_B(self.augment(fake_b))
        adversarial = (loss.g_loss(fake_b_logits) + loss.g_loss(self.D_A(self.augment(fake_a)))) / 2
        cycle_a = F.l1_loss(self.G_BA(fake_b), real_a)
        cycle_b = F.l1_loss(self.G_AB(fake_a), real_b)
        g_loss = adversarial + hp["lambda_cyc"] * (cycle_a + cycle_b) / 2 + hp["lambda_id"] * (identity_a + identity_b) / 2
        self.backward(g_loss, "generator")
        self.D_A.requires_grad_(True)
        self.D_B.requires_grad_(True)
        self.optimizer_step("generator")
        # (2) Update D_A, then D_B: the real domain against fakes from the replay buffer.
        d_a, _, _ = self._update_d(self.D_A, "discriminator_a", real_a, fake_a, "fake_a_buffer", loss)
        d_b, real_b_logits, _ = self._update_d(self.D_B, "discriminator_b", real_b, fake_b, "fake_b_buffer", loss)
        return {"d_loss": ((d_a + d_b) / 2).detach(), "g_loss": g_loss.detach(), "d_real": loss.score(real_b_logits),
                "d_fake": loss.score(fake_b_logits), "cycle_a": cycle_a.detach(), "cycle_b": cycle_b.detach(),
                "identity_a": identity_a.detach(), "identity_b": identity_b.detach(), **self.held_out_metrics()}

    def _update_d(self, D, name: str, real: torch.Tensor, fake: torch.Tensor, buffer: str, loss):
        self.optimizers[name].zero_grad(set_to_none=True)
        shown = self.extra_state[buffer].push_and_pop(fake, self.noise)
        real_logits = D(self.augment(real))
        self.augment.observe(real_logits)
        d_loss = loss.d_loss(real_logits, D(self.augment(shown))) / 2
        self.backward(d_loss, name)
        self.optimizer_step(name)
        return d_loss, real_logits, shown

    @torch.no_grad()
    def held_out_metrics(self) -> dict[str, torch.Tensor]:
        """``fd_a`` and ``fd_b`` on the held-out domains, every ``fd_every`` steps (the last value in between)."""
        if self._fd is None or self.step % self.hp["fd_every"] == 0:
            test_a, test_b = self.held_out["images"], self.held_out["domain_b"]
            self._fd = {"fd_a": pixel_fd(self.G_BA(test_b), test_a), "fd_b": pixel_fd(self.G_AB(test_a), test_b)}
        return self._fd


def build(hp: dict, data) -> CycleGAN:
    if data.size % 4:
        raise ValueError(f"the ResNet generator halves the image twice: its side must be a multiple of 4, not {data.size}")
    G_AB, G_BA = (ResNetGenerator(data.channels, hp["residual_blocks"], hp["ngf"]) for _ in range(2))
    D_A, D_B = (PatchDiscriminator(data.channels, hp["ndf"]) for _ in range(2))
    for net in (G_AB, G_BA, D_A, D_B):
        net.apply(init_normal)
    return CycleGAN(G_AB, G_BA, D_A, D_B, hp, data.image_shape)


SPEC = ModelSpec(
    name="cyclegan",
    description="CycleGAN of PyTorch-GAN: two ResNet Gs, two PatchGAN Ds, cycle 10 + identity 5, replay buffer; "
                "unpaired folders",
    build=build,
    hyperparams=training_params(batch_size=4, lr=2e-4, epochs=200) + (
        HyperParam("image_size", "int", 32, "side of the square images (PatchGAN needs 32 or more)",
                   choices=(32, 64, 128, 256, 512)),
        HyperParam("ngf", "int", 64, "generator feature maps of the first layer", min=1, max=1024),
        HyperParam("ndf", "int", 64, "discriminator feature maps", min=1, max=1024),
        HyperParam("residual_blocks", "int", 9, "residual blocks of each generator", min=0, max=64),
        HyperParam("lambda_cyc", "float", 10.0, "weight of the cycle-consistency loss", min=0.0, max=1e6),
        HyperParam("lambda_id", "float", 5.0, "weight of the identity loss", min=0.0, max=1e6),
        HyperParam("buffer_size", "int", 50, "fakes each replay buffer keeps", min=1, max=10000),
        HyperParam("decay_start_kimg", "float", 100.0, "thousands of images before the learning rate starts to fall",
                   min=0.0),
        HyperParam("decay_kimg", "float", 100.0, "thousands of images over which it falls to zero (0: no decay)",
                   min=0.0),
        HyperParam("fd_every", "int", 50, "measure fd_a and fd_b every N steps", min=1),
    ),
    dataset="folder",
    loss="lsgan",
)


@hookimpl
def ganbench_register_models(register):
    register(SPEC)
