"""R3GAN (Huang et al., NeurIPS 2024, "The GAN is dead; long live the GAN! A Modern GAN Baseline"), pure PyTorch.

The networks are in ``plugins.r3gan_networks``. The objective is R3GAN's: the relativistic pairing loss
(``rpgan``) with R1 and R2 on every step (``r1_gamma = r2_gamma``, ``reg_every=1``), D updated before G, Adam
with beta1 = 0. Every schedule of brownvc/R3GAN's CIFAR-10 configuration is a cosine from its first to its
last value over ``decay_kimg`` thousand images (``cosine_decay_with_warmup`` in ``training_loop.py``),
computed from ``images_seen`` alone, so a resumed run takes exactly the steps of an uninterrupted one:

- the learning rate of both networks, ``lr`` to ``lr_final``; Adam's beta2, ``b2`` to ``b2_final``;
- R1/R2's gamma, ``r1_gamma``/``r2_gamma`` to ``gamma_final_share`` of them;
- the generator EMA's half-life, 0 to ``ema_kimg`` (``ema_kimg_at``);
- the augmentation's p, 0 to ``aug_p_final`` (the engine's ``augment=ada`` pipeline with p set, not adapted;
  ``aug_p_final=0`` leaves p to the engine: ADA adapts it, diffaug keeps ``augment_p``).

Where this step differs from R3GAN's: one real batch and one set of fakes serve both updates (R3GAN draws a
second pair for G's), the fakes of a conditional model take the real batch's labels as R3GAN's do, and
R1/R2 are differentiated through the same D pass as the loss, as R3GAN does (one augmentation per image).
"""

from __future__ import annotations

import math

import torch

from plugins.r3gan_networks import Discriminator, Generator, stage_plan
from workbench.api import (AdversarialLoss, ConfigError, DataInfo, HyperParam, Metrics, ModelSpec, TwoNetworkGAN,
                           adam, hookimpl, training_params)

SIZES = (32, 64, 128, 256)


def cosine_schedule(images_seen: int, first: float, last: float, total_kimg: float) -> float:
    """R3GAN's schedule: ``first`` at 0 images, ``last`` from ``total_kimg`` thousand images on, a half cosine between."""
    total = total_kimg * 1000
    if images_seen >= total:
        return last
    decay = 0.5 * (1 + math.cos(math.pi * images_seen / total))
    return first + (1 - decay) * (last - first)


class R3GAN(TwoNetworkGAN):
    """R3GAN's training step on ``TwoNetworkGAN``'s networks and services (augment, penalties, EMA, scalers).

    Conditional (``batch_fields = ("labels",)``) when built for a dataset with classes, unconditional otherwise.
    """

    cuda_graph_safe = False  # the schedules set a new lr and beta2 every step: a captured step would freeze them

    def __init__(self, generator, discriminator, hp: dict, n_classes: int):
        super().__init__(generator, discriminator, hp, latent_dim=hp["latent_dim"], d_first=True, d_scale=1.0)
        self.n_classes = n_classes
        self.batch_fields = ("labels",) if n_classes else ()
        self.channels_last = True
        self._configured_gammas: dict[str, float] | None = None

    def make_optimizers(self) -> None:
        device = next(self.G.parameters()).device
        hp = self.hp
        self.optimizers = {name: adam(net.parameters(), hp["lr"], hp["b1"], hp["b2"], device)
                           for name, net in (("generator", self.G), ("discriminator", self.D))}

    def generate(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Images in [-1, 1]: G has no tanh (R3GAN's neither), so its output is clamped as R3GAN's
        ``gen_images.py`` clamps it; D trains on the unclamped fakes."""
        if not self.n_classes:
            return self.G(z).clamp(-1, 1)
        if labels is None:  # balanced classes when none are asked for
            labels = torch.arange(z.shape[0], device=z.device) % self.n_classes
        return self.G(z, labels).clamp(-1, 1)

    # -- the schedules: pure functions of images_seen -------------------------------------------------------

    def _cosine(self, first: float, last: float) -> float:
        return cosine_schedule(self.images_seen, first, last, self.hp["decay_kimg"])

    def ema_kimg_at(self, images_seen: int, configured: float) -> float:
        return cosine_schedule(images_seen, 0.0, configured, self.hp["decay_kimg"])

    def _apply_schedules(self) -> None:
        hp = self.hp
        lr, b2 = self._cosine(hp["lr"], hp["lr_final"]), self._cosine(hp["b2"], hp["b2_final"])
        every = self.penalties.every
        ratio = every / (every + 1) if every > 1 else 1.0  # lazy R1/R2: stylegan2-ada's mb_ratio on D's Adam
        for name, scale in (("generator", 1.0), ("discriminator", ratio)):
            for group in self.optimizers[name].param_groups:
                group["lr"] = lr * scale
                group["betas"] = (hp["b1"] ** scale, b2 ** scale)
        if self._configured_gammas is None:  # the engine's r1_gamma/r2_gamma are the schedule's first values
            self._configured_gammas = dict(self.penalties.gammas)
        share = self._cosine(1.0, hp["gamma_final_share"])
        for name, gamma in self._configured_gammas.items():
            self.penalties.gammas[name] = gamma * share
        if hp["aug_p_final"] > 0 and hasattr(self.augment, "p"):
            self.augment.p.fill_(self._cosine(0.0, hp["aug_p_final"]))

    # -- the step ---------------------------------------------------------------------------------------------

    def train_step(self, real: torch.Tensor, loss: AdversarialLoss, labels: torch.Tensor | None = None) -> Metrics:
        self._apply_schedules()
        cond = () if labels is None else (labels,)
        fake = self.G(self.draw_noise(real.shape[0], real.device), *cond)

        # (1) Update D: the loss and R1/R2 from one pass over the real batch and one over the fakes
        opt = self.optimizers["discriminator"]
        opt.zero_grad(set_to_none=True)
        penalised = self.penalties.gammas and self.penalties.due(self.step)
        real_in = real.detach().requires_grad_(bool(penalised))
        fake_in = fake.detach().requires_grad_(bool(penalised))
        real_logits = self._d(real_in, *cond)
        fake_logits = self._d(fake_in, *cond)
        if self.hp["aug_p_final"] <= 0:
            self.augment.observe(real_logits)  # ADA adapts p only when no schedule sets it
        d_loss = loss.d_loss(real_logits, fake_logits)
        extra = loss.penalty(lambda x: self._d(x, *cond), real, fake.detach())
        if extra is not None:
            d_loss = d_loss + extra
        if penalised:
            d_loss = d_loss + self._r1_r2(real_in, fake_in, real_logits, fake_logits)
        elif self.penalties.gammas and not self.penalties.latest:
            self.penalties.latest = {name: real.new_zeros((), dtype=torch.float32) for name in self.penalties.gammas}
        self.backward(d_loss, "discriminator")
        self.optimizer_step("discriminator")

        # (2) Update G: the same fakes, judged by the updated D against the real batch
        opt = self.optimizers["generator"]
        opt.zero_grad(set_to_none=True)
        self.D.requires_grad_(False)
        fake_logits_g = self._d(fake, *cond)
        if loss.relativistic:
            with torch.no_grad():  # no gradient reaches G through the reals
                real_logits_g = self._d(real, *cond)
            g_loss = loss.g_loss(fake_logits_g, real_logits_g)
        else:
            g_loss = loss.g_loss(fake_logits_g)
        self.backward(g_loss, "generator")
        self.D.requires_grad_(True)
        self.optimizer_step("generator")

        metrics = {"d_loss": d_loss.detach(), "g_loss": g_loss.detach(), "d_real": loss.score(real_logits),
                   "d_fake": loss.score(fake_logits)}
        return {**metrics, **self.penalties.latest}

    def _r1_r2(self, real_in, fake_in, real_logits, fake_logits) -> torch.Tensor:
        """gamma/2 * (||grad D(real)||^2 + ||grad D(fake)||^2), per image then averaged; scaled by the lazy
        interval. Both gradients come from one backward pass (D's logits of the reals depend on the reals only)."""
        gammas, inputs = self.penalties.gammas, []
        outputs = []
        for name, images, logits in (("r1", real_in, real_logits), ("r2", fake_in, fake_logits)):
            if name in gammas:
                inputs.append(images)
                outputs.append(logits.float().sum())
        grads = torch.autograd.grad(sum(outputs), inputs, create_graph=True)
        total = 0.0
        for name, grad in zip([n for n in ("r1", "r2") if n in gammas], grads):
            value = grad.float().square().flatten(1).sum(1).mean()
            self.penalties.latest[name] = value.detach()
            total = total + value * (gammas[name] / 2 * self.penalties.every)
        return total


def build(hp: dict, data: DataInfo) -> R3GAN:
    size = data[1]
    if size not in SIZES:
        raise ConfigError(f"r3gan builds 32, 64, 128 and 256 px images, not {size} px: "
                          "set image_size to one of them.")
    plan = stage_plan(size, hp["width"], hp["cardinality"])
    for width, groups in plan:
        if (width * hp["expansion"]) % groups:
            raise ConfigError(f"r3gan's grouped convolutions need width × expansion ({width * hp['expansion']}) "
                              f"divisible by cardinality ({groups}) in every stage; change width or cardinality.")
    n_classes = data.n_classes
    G = Generator(hp["latent_dim"], data[0], plan, hp["blocks"], hp["expansion"], n_classes)
    D = Discriminator(data[0], plan, hp["blocks"], hp["expansion"], n_classes)
    return R3GAN(G, D, hp, n_classes)


SPEC = ModelSpec(
    name="r3gan",
    description="R3GAN (Huang et al. 2024): ResNet G and D with grouped inverted bottlenecks, relativistic pairing "
                "loss with R1+R2, EMA, cosine schedules in images seen; conditional when the data has classes",
    build=build,
    hyperparams=training_params(batch_size=512, lr=2e-4, epochs=10000, b1=0.0, b2=0.9) + (
        HyperParam("lr_final", "float", 5e-5, "learning rate at the end of the cosine schedule", min=0.0, max=1.0),
        HyperParam("b2_final", "float", 0.99, "Adam beta2 at the end of the schedule", min=0.0, max=0.999999),
        HyperParam("gamma_final_share", "float", 0.1, "R1/R2 gamma at the end, as a share of r1_gamma/r2_gamma",
                   min=0.0, max=100.0),
        HyperParam("aug_p_final", "float", 0.55, "augmentation p at the end, from 0 (0: p left to the engine's "
                   "augment setting)", min=0.0, max=1.0),
        HyperParam("decay_kimg", "float", 20000.0, "thousands of images over which every schedule runs",
                   min=0.001, max=1e7),
        HyperParam("latent_dim", "int", 64, "size of the noise vector", min=1, max=4096),
        HyperParam("width", "int", 768, "channels of the stages up to 32x32 (halved in each stage above)",
                   min=1, max=8192),
        HyperParam("cardinality", "int", 96, "groups of the 3x3 convolutions up to 32x32 (halved above)",
                   min=1, max=8192),
        HyperParam("blocks", "int", 2, "residual blocks per stage", min=1, max=64),
        HyperParam("expansion", "int", 2, "inverted bottleneck: the blocks' inner width over their width",
                   min=1, max=16),
        HyperParam("image_size", "int", 32, "side of the square images", choices=SIZES),
    ),
    dataset="fashion-mnist-test",
    loss="rpgan",
    engine_defaults={"r1_gamma": 0.05, "r2_gamma": 0.05, "reg_every": 1, "ema_kimg": 5000.0,
                     "augment": "ada"},
)


@hookimpl
def ganbench_register_models(register):
    register(SPEC)
