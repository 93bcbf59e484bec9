"""Core adversarial losses, all computed from logits: bce, lsgan, hinge, wgan-gp, rpgan."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from workbench.api import AdversarialLoss, LossSpec, hookimpl


class BCELoss(AdversarialLoss):
    """The non-saturating GAN loss of Goodfellow et al., as the reference scripts use it."""

    name = "bce"

    def d_loss(self, real_logits, fake_logits):
        return F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits)) + \
            F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))

    def g_loss(self, fake_logits):
        return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


class RawScore(AdversarialLoss):
    """Losses whose discriminator output is not a probability report its plain mean."""

    def score(self, logits):
        return logits.detach().float().mean()


class LSGANLoss(RawScore):
    """Least-squares GAN (Mao et al. 2017): targets 1 for real, 0 for fake."""

    name = "lsgan"

    def d_loss(self, real_logits, fake_logits):
        return F.mse_loss(real_logits, torch.ones_like(real_logits)) + F.mse_loss(fake_logits, torch.zeros_like(fake_logits))

    def g_loss(self, fake_logits):
        return F.mse_loss(fake_logits, torch.ones_like(fake_logits))


class HingeLoss(RawScore):
    """Hinge loss (Lim & Ye 2017; Miyato et al. 2018)."""

    name = "hinge"

    def d_loss(self, real_logits, fake_logits):
        return F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean()

    def g_loss(self, fake_logits):
        return -fake_logits.mean()


class WGANGPLoss(RawScore):
    """Wasserstein loss with gradient penalty (Gulrajani et al. 2017), lambda = 10."""

    name = "wgan-gp"

    def __init__(self, weight: float = 10.0):
        self.weight = weight

    def d_loss(self, real_logits, fake_logits):
        return fake_logits.mean() - real_logits.mean()

    def g_loss(self, fake_logits):
        return -fake_logits.mean()

    def penalty(self, critic: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        shape = (real.shape[0],) + (1,) * (real.dim() - 1)
        alpha = torch.rand(shape, device=real.device, dtype=real.dtype)
        mixed = (alpha * real.detach() + (1 - alpha) * fake.detach()).requires_grad_(True)
        (grad,) = torch.autograd.grad(critic(mixed).sum(), mixed, create_graph=True)
        return self.weight * ((grad.flatten(1).norm(2, dim=1) - 1) ** 2).mean()


class RpGANLoss(RawScore):
    """The relativistic pairing loss (Jolicoeur-Martineau 2019) as R3GAN trains with it (Huang et al. 2024):
    each real image is paired with a fake, and D is asked to rank the real above its fake by a margin.

    ``d_loss = mean softplus(-(D(real) - D(fake)))``, ``g_loss = mean softplus(-(D(fake) - D(real)))``; with
    R1 and R2 (``--set r1_gamma=G --set r2_gamma=G``) it is R3GAN's regularised objective.
    """

    name = "rpgan"
    relativistic = True

    def d_loss(self, real_logits, fake_logits):
        return F.softplus(fake_logits - real_logits).mean()

    def g_loss(self, fake_logits, real_logits=None):
        if real_logits is None:
            raise ValueError("rpgan is relativistic: g_loss needs D's logits of the real batch as well.")
        return F.softplus(real_logits - fake_logits).mean()


@hookimpl
def ganbench_register_losses(register):
    register(LossSpec("bce", "non-saturating binary cross-entropy (the reference scripts' loss)", BCELoss))
    register(LossSpec("lsgan", "least squares (Mao et al. 2017)", LSGANLoss))
    register(LossSpec("hinge", "hinge loss (Miyato et al. 2018)", HingeLoss))
    register(LossSpec("wgan-gp", "Wasserstein with gradient penalty, lambda 10 (Gulrajani et al. 2017)", WGANGPLoss))
    register(LossSpec("rpgan", "relativistic pairing, R3GAN's loss (use with r1_gamma and r2_gamma)", RpGANLoss))
