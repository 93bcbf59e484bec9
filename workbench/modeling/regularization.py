"""R1 and R2: zero-centred gradient penalties on D, applied lazily, for every ``TwoNetworkGAN``.

``--set r1_gamma=G`` penalises D's gradient on the real images (Mescheder et al. 2018), ``--set r2_gamma=G`` on
the fakes (R3GAN applies both). ``--set reg_every=N`` applies them on every N-th step only, scaled by N, as
stylegan2-ada-pytorch's lazy regularisation does; the discriminator's optimizer is then rescaled once at build
(``rescale_for_lazy``), so the N-step average matches a penalty applied every step. The penalised images go
through the run's augmentation, like every image D sees.
"""

from __future__ import annotations

import torch


def gradient_penalty(critic, images: torch.Tensor, *cond) -> torch.Tensor:
    """||grad_x critic(x)||^2 per image (shape (N,)), kept in the graph so D's update can differentiate it."""
    images = images.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(images, *cond).float().sum(), images, create_graph=True)
    return grad.float().square().flatten(1).sum(1)


class Penalties:
    """The run's R1/R2 settings and the latest values (logged as the metrics ``r1`` and ``r2``)."""

    def __init__(self, r1_gamma: float = 0.0, r2_gamma: float = 0.0, every: int = 1):
        self.gammas = {name: float(g) for name, g in (("r1", r1_gamma), ("r2", r2_gamma)) if g > 0}
        self.every = max(1, int(every))
        self.latest: dict[str, torch.Tensor] = {}

    @property
    def metric_keys(self) -> tuple[str, ...]:
        return tuple(self.gammas)

    def due(self, step: int) -> bool:
        """Lazy regularisation: the penalties apply on steps 0, N, 2N ... (every step with N = 1)."""
        return step % self.every == 0

    def term(self, step: int, real: torch.Tensor, fake: torch.Tensor, critic_real, critic_fake=None):
        """The penalty to add to D's loss at ``step`` (None when none is due); keeps the values for the log.

        ``critic_real``/``critic_fake`` map images to D's adversarial logits as D judges the real and the fake
        batch (the augmentation and a conditional D's labels inside): R1 differentiates the first at the real
        images, R2 the second at the fakes.
        """
        if not self.gammas:
            return None
        if not self.latest:  # the metrics exist from the first step on, whatever the interval
            self.latest = {name: real.new_zeros((), dtype=torch.float32) for name in self.gammas}
        if not self.due(step):
            return None
        total = None
        for name, gamma in self.gammas.items():
            images, critic = (real, critic_real) if name == "r1" else (fake, critic_fake or critic_real)
            value = gradient_penalty(critic, images).mean()
            self.latest[name] = value.detach().float()
            weighted = value * (gamma / 2 * self.every)
            total = weighted if total is None else total + weighted
        return total


NO_PENALTIES = Penalties()


def rescale_for_lazy(optimizer, every: int) -> None:
    """Lazy regularisation's correction of D's Adam, once at build (stylegan2-ada-pytorch's ``mb_ratio``):
    with the penalty on every N-th step, a step is 1 + 1/N updates' worth, so lr *= N/(N+1) and each beta is
    raised to that power."""
    ratio = every / (every + 1)
    for group in optimizer.param_groups:
        group["lr"] = group["lr"] * ratio
        group["betas"] = tuple(beta ** ratio for beta in group["betas"])
