"""``check_loss_plugin``: a loss's values and gradients on sample logits, then a tiny GAN trained with it."""

from __future__ import annotations

from pathlib import Path

import torch

from workbench.testkit.kit_plugin import KIT_BATCH, KIT_DATASET, KIT_MODEL, KitPlugin
from workbench.testkit.report import KitReport, PluginCheckError, blame
from workbench.testkit.running import check_folder, kit_config, load_with_kit, report_of, train


def check_loss_plugin(name: str, *, device: str = "cpu", workdir: Path | None = None,
                      modules: list | None = None) -> KitReport:
    """Check loss ``name`` on sample logits (scalar, finite, differentiable, the right direction) and train with it.

    :param modules: plugin modules to load besides the installed ones.
    """
    from workbench.host.validation import check_loss_values

    with check_folder(workdir) as root:
        kit = KitPlugin()
        plugins = load_with_kit(kit, "losses", name, modules)
        entry = plugins.registry.losses[name]
        who = f'Loss "{name}" (plugin {entry.plugin} from {entry.dist})'
        loss = blame(plugins.registry.loss(name).build)
        target = torch.device(device)
        blame(check_loss_values, loss, who, target, KIT_BATCH)
        high = torch.full((KIT_BATCH,), 4.0, device=target)
        if not blame(loss.d_loss, high, -high) < blame(loss.d_loss, -high, high):
            raise PluginCheckError(f"{who}: d_loss is not lower when D scores the real images high and the fakes "
                                   f"low than the other way round; check its signs.")
        if not blame(loss.g_loss, high) < blame(loss.g_loss, -high):
            raise PluginCheckError(f"{who}: g_loss is not lower when D scores the fakes high; check its sign.")
        config = kit_config(plugins, kit, KIT_MODEL, KIT_DATASET, name, None, device, root, "check-loss")
        return report_of(train(plugins, config))
