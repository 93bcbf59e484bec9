"""The objects a model or loss plugin returns, and the standard two-network GAN step.

A model plugin's ``build`` returns a ``GanModel``. Most GANs are a generator
and a discriminator trained in alternation: subclass ``TwoNetworkGAN`` and pass
the two modules. Models with another structure (the AAE) override
``train_step``. Every network takes and returns tensors; images are float in
[-1, 1] of shape (N, C, H, W).

A model that trains on more than the images declares the batch fields it needs
in ``batch_fields`` (a conditional GAN: ``("labels",)``); the engine then calls
``train_step(real, loss, labels=...)`` with exactly those fields as keywords and
``generate(z, labels)``. An unconditional model declares nothing and never sees
them. ``ConditionalGAN`` is ``TwoNetworkGAN`` for networks that take the labels.

A model's whole training state is what ``state_parts`` lists: its networks, the
engine's averaged copies of them (the generator EMA), its optimizers, and any
``extra_state`` (an augmentation's p, a replay buffer, counters, fp16 scalers).
``workbench.engine.state`` walks that one list for checkpoints, resume, the
torchrun broadcast, the divergence guard and the memory estimate.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from workbench.modeling.optimizers import FusedAdam, adam  # noqa: F401 - re-exported: plugins import adam from here
from workbench.modeling.regularization import NO_PENALTIES
from workbench.modeling.streams import gradients_from_two_streams, queue_beside

Metrics = dict[str, torch.Tensor]


class AdversarialLoss:
    """An adversarial objective computed from raw discriminator outputs (logits).

    Subclasses implement ``d_loss`` and ``g_loss``; ``penalty`` adds a
    regulariser (the gradient penalty of WGAN-GP); ``score`` turns logits into
    the number shown as D(x) and D(G(z)).
    """

    name = "loss"
    # A relativistic loss (RpGAN) compares each fake with a real: g_loss(fake_logits, real_logits) then.
    relativistic = False

    def d_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        """The discriminator's loss (a scalar): real and fake terms summed."""
        raise NotImplementedError

    def g_loss(self, fake_logits: torch.Tensor, real_logits: torch.Tensor | None = None) -> torch.Tensor:
        """The generator's loss (a scalar); a ``relativistic`` loss is also given D's logits of the real batch."""
        raise NotImplementedError

    def penalty(self, critic: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor | None:
        """An extra discriminator term, or None."""
        return None

    def score(self, logits: torch.Tensor) -> torch.Tensor:
        """The mean discriminator output shown to the user (a probability for BCE)."""
        return torch.sigmoid(logits.detach().float()).mean()


class NoAugment:
    """The augmentation of a run without one (``--set augment=none``): every image passes unchanged."""

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        return images

    def observe(self, real_logits: torch.Tensor) -> None:
        """ADA's statistic of D(real); nothing to adapt here."""

    def metrics(self) -> dict[str, torch.Tensor]:
        return {}


@dataclass(frozen=True)
class StatePart:
    """One piece of a model's training state, under its checkpoint prefix.

    ``kind`` says how the engine treats it: ``network`` (trained: compiled, gradients averaged under
    torchrun, counted as trained weights), ``average`` (an inference-only copy such as the generator EMA:
    saved and broadcast, never compiled or trained), ``optimizer``, or ``buffers`` (any object whose
    ``state_dict()`` holds tensors only, restored with ``load_state_dict``).
    """

    key: str
    kind: str
    obj: Any


class GanModel:
    """A trainable GAN: its networks, optimizers and one training step.

    :param networks: every ``nn.Module`` by name; all are saved in checkpoints.
    :param optimizers: every optimizer by name; all are saved in checkpoints.
    :param latent_dim: the size of the noise vector the generator takes.

    The engine sets, before every ``train_step``: ``step`` (steps done before this one) and
    ``images_seen`` (images of the whole job seen before it; kimg = images_seen / 1000), both restored on
    resume, so schedules written as functions of them resume exactly. It also sets ``augment`` (call it on
    every image D sees; ``augment.observe(real_logits)`` feeds ADA) and routes ``backward`` and
    ``optimizer_step`` through the fp16 scalers when ``amp=fp16``.
    """

    channels_last = False  # convolutional models run faster in NHWC on CPU and GPU
    # True: train_step does the same tensor work every step (no Python branch on values or on the step
    # number, no host sync), so the engine may replay it as a CUDA graph. Only trusted when declared by
    # the class that defines train_step (see workbench.engine.graphs.graph_safe).
    cuda_graph_safe = False
    # The batch fields train_step takes as keywords besides the images: () or ("labels",) (int64 (N,) class
    # indices on the batch's device, taken with the same indices as the images). See workbench.data.device.
    # An image-to-image model declares ("source",) (paired) or ("domain_b",) (unpaired): see workbench.host.translation;
    # its generate(z, source=images) translates, z of shape (N, latent_dim), and latent_dim may be 0.
    batch_fields: tuple[str, ...] = ()
    # Set by the engine for an image-to-image model: the test split's images ("images") and image field, float
    # on the training device (at most 256 of each), for held-out metrics in train_step. Never trained on.
    held_out: dict[str, torch.Tensor] = {}
    # The number of classes a conditional model was built for (build reads it from data.n_classes); the
    # engine refuses a dataset with another count before the run folder is made.
    n_classes = 0
    # Metrics train_step returns besides the four (METRIC_KEYS), as scalar tensors: they reach the metrics
    # events, `ganbench runs --json`, TensorBoard, the workbench and sweeps; `ganbench compare --metric KEY` ranks
    # runs by one, lowest first unless it is named in higher_is_better (a PSNR, an accuracy).
    metric_keys: tuple[str, ...] = ()
    higher_is_better: tuple[str, ...] = ()
    # The network the engine's generator EMA averages (`--set ema_kimg=K`); None: none to average.
    ema_network: str | None = "generator"
    # False for a model whose D judges something else than images (AAE's latent codes): no augmentation then.
    d_sees_images = True
    # Set by the engine (see the class docstring); these defaults serve a model used outside a run.
    step = 0
    images_seen = 0
    augment: Any = NoAugment()
    precision: Any = None  # the fp16 scalers (workbench.engine.precision.Scalers) under amp=fp16

    def __init__(self, networks: dict[str, nn.Module], optimizers: dict[str, torch.optim.Optimizer], latent_dim: int):
        self.networks = networks
        self.optimizers = optimizers
        self.latent_dim = latent_dim
        self.noise: torch.Generator | None = None  # set by the engine; all sampling draws from it
        self.extra_state: dict[str, Any] = {}  # anything else trained with: objects with tensor state_dicts
        self.averages: dict[str, nn.Module] = {}  # set by the engine: the EMA copy of ``ema_network``

    def state_parts(self) -> list[StatePart]:
        """The model's whole training state, in the one order every engine module walks it."""
        parts = [StatePart(f"net/{name}", "network", net) for name, net in self.networks.items()]
        parts += [StatePart(f"ema/{name}", "average", net) for name, net in getattr(self, "averages", {}).items()]
        parts += [StatePart(f"opt/{name}", "optimizer", opt) for name, opt in self.optimizers.items()]
        parts += [StatePart(f"state/{name}", "buffers", obj) for name, obj in getattr(self, "extra_state", {}).items()]
        if isinstance(self.augment, nn.Module):
            parts.append(StatePart("state/augment", "buffers", self.augment))
        if self.precision is not None:
            parts.append(StatePart("state/scalers", "buffers", self.precision))
        return parts

    def backward(self, loss: torch.Tensor, optimizer: str, **kwargs) -> None:
        """``loss.backward(**kwargs)`` for the optimizer named ``optimizer``: scaled by its fp16 scaler under
        ``amp=fp16``. Call ``optimizer_step(optimizer)`` after it."""
        if self.precision is not None:
            loss = self.precision.scale(loss, optimizer)
        loss.backward(**kwargs)

    def optimizer_step(self, optimizer: str) -> None:
        """Step the optimizer named ``optimizer`` (through its fp16 scaler under ``amp=fp16``, which skips a
        step whose gradients overflowed and lowers its scale)."""
        if self.precision is not None:
            self.precision.step(self.optimizers[optimizer], optimizer)
        else:
            self.optimizers[optimizer].step()

    def ema_kimg_at(self, images_seen: int, configured: float) -> float:
        """The generator EMA's half-life in thousands of images at ``images_seen``: ``ema_kimg`` by default; a
        model with a schedule (R3GAN) overrides it."""
        return configured

    def to(self, device: torch.device) -> GanModel:
        for net in self.networks.values():
            net.to(device)
            if self.channels_last:
                net.to(memory_format=torch.channels_last)
        return self

    def make_optimizers(self) -> None:
        """Create the optimizers after the networks reached their device (fused Adam needs it)."""

    def train(self, mode: bool = True) -> None:
        for net in self.networks.values():
            net.train(mode)

    def draw_noise(self, n: int, device: torch.device) -> torch.Tensor:
        """Standard normal noise of shape (n, latent_dim), drawn on ``device`` from the run's generator."""
        return torch.randn(n, self.latent_dim, device=device, generator=self.noise)

    def draw_labels(self, n: int, device: torch.device) -> torch.Tensor:
        """``n`` class indices drawn uniformly from ``range(n_classes)`` with the run's generator (for the fakes)."""
        return torch.randint(0, self.n_classes, (n,), device=device, generator=self.noise)

    def generate(self, z: torch.Tensor) -> torch.Tensor:
        """Images in [-1, 1] from noise ``z`` of shape (N, latent_dim).

        A conditional model's is ``generate(z, labels)``, labels int64 of shape (N,).
        """
        raise NotImplementedError

    def train_step(self, real: torch.Tensor, loss: AdversarialLoss) -> Metrics:
        """One update of every network on the batch ``real`` (plus the declared ``batch_fields`` as keywords).

        Returns scalar tensors ``d_loss``, ``g_loss``, ``d_real`` and ``d_fake``,
        left on the device: the engine reads them at the logging interval.
        """
        raise NotImplementedError


def needs_labels(model) -> bool:
    """True for a conditional model: one that declares the ``labels`` batch field."""
    return "labels" in getattr(model, "batch_fields", ())


class TwoNetworkGAN(GanModel):
    """A generator and a discriminator updated in alternation, as in the reference scripts.

    :param generator: maps (N, latent_dim) noise to images.
    :param discriminator: maps images to logits of shape (N,) or (N, 1).
    :param hp: the hyper-parameters (``lr``, ``b1``, ``b2`` are used here).
    :param d_first: update D before G (the DCGAN tutorial) rather than after (PyTorch-GAN ``gan.py``).
    :param d_scale: factor on D's loss: 0.5 in ``gan.py``, 1 in the DCGAN tutorial.
    :param reuse_fake_logits: declare it only for a discriminator whose output depends on nothing but its
        weights and input (no BatchNorm, dropout or other state or randomness). With D updated after G, D's
        weights do not change between G's update and D's, so D's pass over the fakes in G's update also
        serves D's update: one forward pass less per step, and bit-identical updates. Ignored with
        ``d_first`` (D's update comes first and changes the weights G's update sees) and with a loss that
        adds a penalty (its extra gradient terms would be summed in another order).
    """

    def __init__(self, generator: nn.Module, discriminator: nn.Module, hp: dict, latent_dim: int,
                 d_first: bool = False, d_scale: float = 0.5, reuse_fake_logits: bool = False):
        super().__init__({"generator": generator, "discriminator": discriminator}, {}, latent_dim)
        self.G, self.D = generator, discriminator
        self.hp, self.d_first, self.d_scale = hp, d_first, d_scale
        self.reuse_fake_logits = reuse_fake_logits and not d_first
        self.penalties = NO_PENALTIES  # the engine's R1/R2 settings (--set r1_gamma, r2_gamma, reg_every)

    @property
    def metric_keys(self) -> tuple[str, ...]:
        return self.penalties.metric_keys

    def _d(self, images: torch.Tensor, *cond) -> torch.Tensor:
        """D's logits of augmented ``images``: every image D sees goes through the run's augmentation."""
        return self.D(self.augment(images), *cond)

    def make_optimizers(self) -> None:
        device = next(self.G.parameters()).device
        hp = self.hp
        self.optimizers = {
            "generator": adam(self.G.parameters(), hp["lr"], hp["b1"], hp["b2"], device),
            "discriminator": adam(self.D.parameters(), hp["lr"], hp["b1"], hp["b2"], device),
        }

    def generate(self, z: torch.Tensor) -> torch.Tensor:
        return self.G(z)

    cuda_graph_safe = True
    # D updated first: on CUDA, D's pass over the real batch runs on a second stream while G draws the fakes.
    # The two are independent, and a DCGAN's small kernels leave the GPU room for both (3 to 12 % less time
    # per step on an H100). False keeps the whole step on one stream; the results are the same.
    overlap_streams = True

    def train_step(self, real: torch.Tensor, loss: AdversarialLoss) -> Metrics:
        return self._alternate(real, loss, (), ())

    def _alternate(self, real: torch.Tensor, loss: AdversarialLoss, real_cond: tuple, fake_cond: tuple) -> Metrics:
        """The alternating updates; ``real_cond``/``fake_cond`` are the extra arguments D (and G) take with the
        real and the fake images: empty for an unconditional GAN, (labels,) for a conditional one."""
        if self.d_first:
            real_logits, join = queue_beside(lambda: self._d(real, *real_cond), real.device, self.overlap_streams)
            fake = self.G(self.draw_noise(real.shape[0], real.device), *fake_cond)
            join()  # D sees the real batch before the fakes, as in the tutorial (BatchNorm's running statistics)
            d_loss, d_real, fake_logits_d = self._update_d(real, fake, loss, real_cond, fake_cond, real_logits)
            g_loss, fake_logits = self._update_g(fake, loss, fake_cond, real, real_cond)
        elif self.reuse_fake_logits and type(loss).penalty is AdversarialLoss.penalty and not loss.relativistic \
                and isinstance(self.augment, NoAugment):
            fake = self.G(self.draw_noise(real.shape[0], real.device), *fake_cond)
            g_loss, fake_logits = self._update_g_keeping_d_graph(fake, loss, fake_cond)
            d_loss, d_real, _ = self._update_d(real, fake, loss, real_cond, fake_cond, fake_logits=fake_logits)
        else:
            fake = self.G(self.draw_noise(real.shape[0], real.device), *fake_cond)
            g_loss, fake_logits = self._update_g(fake, loss, fake_cond, real, real_cond)
            d_loss, d_real, fake_logits_d = self._update_d(real, fake, loss, real_cond, fake_cond)
        # D(G(z)) as the tutorial reports it: D's view of the fakes before its own update.
        d_fake = loss.score(fake_logits_d if self.d_first else fake_logits)
        metrics = {"d_loss": d_loss.detach(), "g_loss": g_loss.detach(), "d_real": d_real, "d_fake": d_fake}
        return {**metrics, **self.penalties.latest}

    def _update_g(self, fake: torch.Tensor, loss: AdversarialLoss, fake_cond: tuple = (),
                  real: torch.Tensor | None = None, real_cond: tuple = ()):
        opt = self.optimizers["generator"]
        opt.zero_grad(set_to_none=True)
        self.D.requires_grad_(False)  # D's weight gradients are not needed for G's step
        fake_logits = self._d(fake, *fake_cond)
        if loss.relativistic:  # RpGAN: each fake is judged against a real
            g_loss = loss.g_loss(fake_logits, self._d(real, *real_cond))
        else:
            g_loss = loss.g_loss(fake_logits)
        self.backward(g_loss, "generator")
        self.D.requires_grad_(True)
        self.optimizer_step("generator")
        return g_loss, fake_logits

    def _update_g_keeping_d_graph(self, fake: torch.Tensor, loss: AdversarialLoss, fake_cond: tuple = ()):
        """G's update from a pass over the fakes through a trainable D, kept for D's update (reuse_fake_logits).

        Only G's gradients are computed (``inputs``), exactly those of the frozen-D pass of ``_update_g``.
        """
        opt = self.optimizers["generator"]
        opt.zero_grad(set_to_none=True)
        fake_logits = self.D(fake, *fake_cond)
        g_loss = loss.g_loss(fake_logits)
        self.backward(g_loss, "generator", inputs=_trainable(opt), retain_graph=True)
        self.optimizer_step("generator")
        return g_loss, fake_logits

    def _update_d(self, real: torch.Tensor, fake: torch.Tensor, loss: AdversarialLoss, real_cond: tuple = (),
                  fake_cond: tuple = (), real_logits: torch.Tensor | None = None,
                  fake_logits: torch.Tensor | None = None):
        opt = self.optimizers["discriminator"]
        opt.zero_grad(set_to_none=True)
        fake = fake.detach()
        # Real and fake go through D separately, as in the reference, so BatchNorm sees the same batches.
        if real_logits is None:
            real_logits = self._d(real, *real_cond)
        self.augment.observe(real_logits)
        reused = fake_logits is not None
        if not reused:
            fake_logits = self._d(fake, *fake_cond)
        d_loss = self.d_scale * loss.d_loss(real_logits, fake_logits)
        # A penalty (WGAN-GP) judges images between real and fake: D judges them under the real batch's labels.
        critic = self.D if not real_cond and isinstance(self.augment, NoAugment) else \
            (lambda images: self._d(images, *real_cond))
        penalty = loss.penalty(critic, real, fake)
        if penalty is not None:
            d_loss = d_loss + penalty
        regularised = self.penalties.term(self.step, real, fake, lambda x: self._d(x, *real_cond),
                                          lambda x: self._d(x, *fake_cond))  # R1/R2 when due (lazy)
        if regularised is not None:
            d_loss = d_loss + regularised
        with gradients_from_two_streams():
            # Reused fake logits still lead back into G, whose update is done: D's gradients only.
            self.backward(d_loss, "discriminator", inputs=_trainable(opt) if reused else None)
        self.optimizer_step("discriminator")
        return d_loss, loss.score(real_logits), fake_logits


class ConditionalGAN(TwoNetworkGAN):
    """``TwoNetworkGAN`` for a generator ``G(z, labels)`` and a discriminator ``D(images, labels)``.

    As in PyTorch-GAN's ``cgan.py``: the fakes are drawn for labels drawn uniformly
    (``draw_labels``), D judges the real batch under its own labels and the fakes
    under the labels they were drawn for. Every adversarial loss works unchanged.

    :param n_classes: the number of classes G and D were built for (``data.n_classes`` in ``build``).
    """

    batch_fields = ("labels",)
    cuda_graph_safe = True

    def __init__(self, generator: nn.Module, discriminator: nn.Module, hp: dict, latent_dim: int, n_classes: int,
                 d_first: bool = False, d_scale: float = 0.5):
        super().__init__(generator, discriminator, hp, latent_dim, d_first=d_first, d_scale=d_scale)
        self.n_classes = n_classes

    def generate(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if labels is None:  # balanced classes when none are asked for
            labels = torch.arange(z.shape[0], device=z.device) % self.n_classes
        return self.G(z, labels)

    def train_step(self, real: torch.Tensor, loss: AdversarialLoss, labels: torch.Tensor) -> Metrics:
        fake_labels = self.draw_labels(real.shape[0], real.device)
        return self._alternate(real, loss, (labels,), (fake_labels,))


def _trainable(optimizer: torch.optim.Optimizer) -> list[torch.Tensor]:
    return [p for group in optimizer.param_groups for p in group["params"] if p.requires_grad]
