"""The classic references the benchmark measures ganbench against (``ganbench bench``).

``models`` and ``loops`` re-state PyTorch-GAN's ``gan.py`` and ``aae.py`` and the
PyTorch DCGAN tutorial as those scripts write them (torchvision datasets with
per-sample transforms in a DataLoader, NumPy noise, a Sigmoid and ``BCELoss``,
``.item()`` and a print every batch); their layer names match the core model
plugins, so both start from the same weights. ``data`` feeds them the very images
the engine trains on; ``workloads`` pairs each with its engine plugin;
``gan_script.py`` and ``aae_script.py`` are standalone scripts of the two
PyTorch-GAN references, run as processes by ``ganbench bench --whole-process``.

These re-statements are deliberate: they are the benchmark's "classic" side.
The module imports nothing heavy: registering the workloads (every command loads the plugins) imports
no torchvision; the classic loops load when the benchmark builds one.
"""

from __future__ import annotations

from workbench.api import hookimpl


@hookimpl
def ganbench_register_workloads(register):
    from plugins.classic.workloads import WORKLOADS

    for workload in WORKLOADS:
        register(workload)
