"""The training services the engine gives every model: generator EMA, augmentation, R1/R2, fp16 scalers.

``attach_services`` reads the engine settings once, at build, and hangs each service on the model where the
model's step uses it (``model.augment``, ``model.penalties``, ``model.precision``) or where the state seam
saves it (``model.averages``); ``Services.after_step`` does what follows an accepted step (the EMA update,
ADA's adjustment of p) outside the training step, so the step itself stays what the model wrote.
"""

from __future__ import annotations

import copy

import torch

from workbench.base.errors import ConfigError
from workbench.engine.precision import Scalers
from workbench.modeling.model import NoAugment
from workbench.modeling.regularization import Penalties, rescale_for_lazy


class GeneratorEMA:
    """An exponential moving average of one network, as stylegan2-ada-pytorch keeps G_ema.

    After each step: ``beta = 0.5 ** (batch / (ema_kimg * 1000))``, the half-life counted in images, with
    NVlabs' ramp-up (``ema_nimg = min(ema_nimg, images_seen * ema_rampup)``) so the average does not drag the
    untrained start along. Floating-point buffers (BatchNorm's running statistics) are averaged with the same
    beta rather than copied as NVlabs does: the averaged weights were trained under the statistics of the
    same past steps, so their average is what matches them; integer buffers (batch counts) are copied.
    """

    def __init__(self, model, name: str, kimg: float, rampup: float, batch_size: int):
        self.model, self.name, self.kimg, self.rampup, self.batch_size = model, name, kimg, rampup, batch_size
        self.source = model.networks[name]
        self.average = copy.deepcopy(self.source).eval().requires_grad_(False)
        model.averages[name] = self.average

    def beta(self, images_seen: int) -> float:
        nimg = self.model.ema_kimg_at(images_seen, self.kimg) * 1000
        if self.rampup > 0:
            nimg = min(nimg, images_seen * self.rampup)
        return 0.5 ** (self.batch_size / max(nimg, 1e-8))

    @torch.no_grad()
    def update(self, images_seen: int) -> None:
        weight = 1.0 - self.beta(images_seen)
        averaged = list(self.average.parameters())
        torch._foreach_lerp_(averaged, [p.detach() for p in self.source.parameters()], weight)
        for avg, live in zip(self.average.buffers(), self.source.buffers()):
            if avg.is_floating_point():
                avg.lerp_(live, weight)
            else:
                avg.copy_(live)


class Services:
    """What the engine does for the model besides calling its step."""

    def __init__(self, ema: GeneratorEMA | None, augment, ada_interval: int, reduce=None):
        self.ema, self.augment, self.ada_interval, self.reduce = ema, augment, ada_interval, reduce

    @property
    def active(self) -> bool:
        return self.ema is not None or not isinstance(self.augment, NoAugment)

    def metric_keys(self) -> tuple[str, ...]:
        """The metrics the services add to the model's (the augmentation's p)."""
        return tuple(self.augment.metrics())

    def metrics(self) -> dict[str, torch.Tensor]:
        return self.augment.metrics()

    def after_step(self, step: int, images_seen: int) -> None:
        """After an accepted step (``step`` steps and ``images_seen`` images done)."""
        if self.ema is not None:
            self.ema.update(images_seen)
        if step % self.ada_interval == 0 and hasattr(self.augment, "adjust"):
            self.augment.adjust(self.reduce)


def attach_services(model, engine: dict, batch_size: int, device: torch.device,
                    reduce=None) -> Services:
    """Build the services the engine settings ask for and hang them on ``model`` (before compiling it).

    :param batch_size: images per step of the whole job. :param reduce: under torchrun, an in-place sum
        over the ranks (ADA's statistic is the job's).
    """
    amp = engine.get("amp", "none")
    if amp == "fp16" and not getattr(model, "owns_precision", False):
        model.precision = Scalers(list(model.optimizers), device, reduce)
    ema = None
    if engine.get("ema_kimg", 0) > 0:
        name = getattr(model, "ema_network", None)
        if name not in model.networks:
            raise ConfigError(f"ema_kimg needs a generator to average, and this model names none among its networks "
                              f"({', '.join(model.networks)}); train it with ema_kimg=0.")
        ema = GeneratorEMA(model, name, engine["ema_kimg"], engine.get("ema_rampup", 0.0), batch_size)
    kind = engine.get("augment", "none")
    if kind != "none" and not model.d_sees_images:
        raise ConfigError(f"augment={kind} augments the images a discriminator judges, and this model's "
                          "discriminator judges no images; train it with augment=none.")
    if kind != "none":
        from workbench.engine.augment import build_augmenter  # torch ops only; loaded when a run asks for it

        model.augment = build_augmenter(kind, p=engine["augment_p"], target=engine["ada_target"],
                                        interval=engine["ada_interval"], kimg=engine["ada_kimg"],
                                        batch_size=batch_size, generator=model.noise).to(device)
    r1, r2, every = engine.get("r1_gamma", 0.0), engine.get("r2_gamma", 0.0), engine.get("reg_every", 1)
    if r1 > 0 or r2 > 0:
        if not hasattr(model, "penalties"):
            raise ConfigError("r1_gamma and r2_gamma are applied by the step of TwoNetworkGAN and the models that "
                              "call model.penalties; this model's step does not: leave them at 0.")
        model.penalties = Penalties(r1, r2, every)
        if every > 1:  # lazy: D's optimizer rescaled once, as stylegan2-ada-pytorch does
            rescale_for_lazy(model.optimizers["discriminator"], every)
    return Services(ema, model.augment, engine.get("ada_interval", 4), reduce)

