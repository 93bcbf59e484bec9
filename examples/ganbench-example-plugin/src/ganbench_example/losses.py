"""Two adversarial losses: the plain Wasserstein loss, and the non-saturating loss with an R1 penalty."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from workbench.api import AdversarialLoss, LossSpec, hookimpl


class WassersteinLoss(AdversarialLoss):
    """The critic's estimate of the Wasserstein distance (Arjovsky et al. 2017), for weight-clipped critics."""

    name = "wasserstein"

    def d_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        return fake_logits.mean() - real_logits.mean()

    def g_loss(self, fake_logits: torch.Tensor) -> torch.Tensor:
        return -fake_logits.mean()

    def score(self, logits: torch.Tensor) -> torch.Tensor:
        return logits.detach().float().mean()  # a critic's output is no probability


class R1Loss(AdversarialLoss):
    """Non-saturating loss with the R1 penalty on real images (Mescheder et al. 2018), as StyleGAN uses it.

    :param gamma: weight of the penalty ``gamma / 2 * E ||grad D(x_real)||^2``.
    """

    name = "r1"

    def __init__(self, gamma: float = 10.0):
        self.gamma = gamma

    def d_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()

    def g_loss(self, fake_logits: torch.Tensor) -> torch.Tensor:
        return F.softplus(-fake_logits).mean()

    def penalty(self, critic: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        real = real.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(critic(real).sum(), real, create_graph=True)
        return self.gamma / 2 * grad.pow(2).flatten(1).sum(1).mean()


@hookimpl
def ganbench_register_losses(register):
    register(LossSpec("wasserstein", "Wasserstein critic loss without a penalty (for weight clipping)",
                      WassersteinLoss))
    register(LossSpec("r1", "non-saturating loss with an R1 penalty on reals, gamma 10 (Mescheder et al. 2018)",
                      R1Loss))
