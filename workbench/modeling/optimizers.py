"""The optimizers models build: Adam as the reference scripts use it, on the fused kernel called directly."""

from __future__ import annotations

import sys

import torch


class FusedAdam(torch.optim.Adam):
    """``torch.optim.Adam(fused=True)`` whose ``step`` calls the fused kernel itself.

    The same kernel with the same tensors in the same order, so the updates are bit-identical (a test
    compares them), without what ``Adam.step`` adds around it every step: the step hooks and profiler
    records, grouping the tensors by device, and an import of ``torch._dynamo`` (1.5 s of CPU before a run's
    first step on a 2-core CPU, and as much again when the process exits). Settings the shortcut does not
    cover (amsgrad, maximize, a tensor learning rate, a closure ...) go through ``Adam.step``.
    """

    def __init__(self, params, **kwargs):
        _no_dynamo_import_for_optimizers()
        super().__init__(params, fused=True, **kwargs)

    def step(self, closure=None):
        if closure is not None or not all(_plain_fused(group) for group in self.param_groups) \
                or getattr(self, "grad_scale", None) is not None or getattr(self, "found_inf", None) is not None:
            return super().step(closure)
        with torch.no_grad():
            for group in self.param_groups:
                params, grads, exp_avgs, exp_avg_sqs, steps = [], [], [], [], []
                has_complex = self._init_group(group, params, grads, exp_avgs, exp_avg_sqs, [], steps)
                if not params:
                    continue
                if has_complex or len({(p.device, p.dtype) for p in params}) > 1:
                    return super().step()  # Adam.step groups them; the states are initialised already
                beta1, beta2 = group["betas"]
                torch._foreach_add_(steps, 1)
                torch._fused_adam_(params, grads, exp_avgs, exp_avg_sqs, [], steps, amsgrad=False, lr=group["lr"],
                                   beta1=beta1, beta2=beta2, weight_decay=group["weight_decay"], eps=group["eps"],
                                   maximize=False, grad_scale=None, found_inf=None)
        return None

    def zero_grad(self, set_to_none: bool = True) -> None:
        if not set_to_none:
            return super().zero_grad(set_to_none)
        for group in self.param_groups:
            for p in group["params"]:
                p.grad = None


def _plain_fused(group: dict) -> bool:
    return (group["fused"] and not group["amsgrad"] and not group["maximize"] and not group["differentiable"]
            and not group.get("decoupled_weight_decay", False) and not torch.is_tensor(group["lr"]))


def _no_dynamo_import_for_optimizers() -> None:
    """Let torch.optim's ``add_param_group``, ``state_dict`` and ``load_state_dict`` run without importing dynamo.

    They are wrapped in ``torch._disable_dynamo``, whose first call imports ``torch._dynamo`` only to mark the
    method "never trace", and keeps the marked function in the attribute ``__dynamo_disable``. Until dynamo
    is loaded no code can be compiled, so marking each with itself changes nothing but the import.
    ganbench compiles networks only (``compile=on``), never an optimizer.
    """
    if "torch._dynamo" in sys.modules:
        return
    for method in ("add_param_group", "zero_grad", "state_dict", "load_state_dict"):
        function = getattr(getattr(torch.optim.Optimizer, method), "__wrapped__", None)
        if function is not None and not hasattr(function, "__dynamo_disable"):
            setattr(function, "__dynamo_disable", function)


def adam(params, lr: float, b1: float, b2: float, device: torch.device) -> torch.optim.Adam:
    """Adam as the reference scripts use it; the fused kernel on CUDA and CPU (+20 % per step on the CPU MLPs,
    called directly by ``FusedAdam``), foreach elsewhere."""
    if device.type in ("cuda", "cpu"):
        return FusedAdam(params, lr=lr, betas=(b1, b2))
    return torch.optim.Adam(params, lr=lr, betas=(b1, b2), foreach=True)
