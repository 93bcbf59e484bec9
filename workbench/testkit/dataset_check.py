"""``check_dataset_plugin``: load a dataset plugin's images, check them, train a tiny GAN on them."""

from __future__ import annotations

from pathlib import Path

from workbench.host.registry import DataRequest
from workbench.testkit.kit_plugin import KIT_BATCH, KIT_MODEL, KitPlugin
from workbench.testkit.report import KitReport, PluginCheckError, blame
from workbench.testkit.running import check_folder, kit_config, load_with_kit, report_of, train


def check_dataset_plugin(name: str, *, data_root: Path | str | None = None, split: str = "train",
                         image_size: int = 32, device: str = "cpu", workdir: Path | None = None,
                         modules: list | None = None) -> KitReport:
    """Load dataset ``name``, check what it returned, and train a tiny GAN on it for two steps.

    :param data_root: the folder to read (``--data-root``); None lets the dataset search its default place.
    :param split: ``train`` or ``test``.
    :param image_size: the side the tiny GAN asks for.
    :param modules: plugin modules to load besides the installed ones.
    """
    with check_folder(workdir) as root:
        kit = KitPlugin()
        plugins = load_with_kit(kit, "datasets", name, modules)
        request = DataRequest(root=Path(data_root) if data_root else None, download=False, image_size=image_size,
                              split=split, cache_dir=root / "cache")
        data = blame(plugins.registry.dataset(name).load, request)
        count = int(data.images.shape[0])
        if count < 2:
            raise PluginCheckError(f'Dataset "{name}" returned {count} image(s); the check needs at least 2.')
        kit.channels = int(data.images.shape[1])
        config = kit_config(plugins, kit, KIT_MODEL, name, None, {"image_size": image_size,
                                                                   "batch_size": min(KIT_BATCH, count)},
                            device, root, "check-dataset", data_root=str(data_root) if data_root else None)
        return report_of(train(plugins, config))
