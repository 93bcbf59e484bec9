"""Import paths that moved in 0.2 and keep working for this release, with a DeprecationWarning.

Third-party plugins written against 0.1 import ``workbench.model``, ``workbench.registry`` ... Each old
path below is answered with the module that now holds the code (the same module object, so ``isinstance``
and monkeypatching see one class), and a warning naming ``workbench.api``, the one surface to import from.
The aliases go in 0.3.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import warnings

MOVED = {
    "workbench.errors": "workbench.base.errors",
    "workbench.atomic": "workbench.base.atomic",
    "workbench.params": "workbench.base.params",
    "workbench.datapaths": "workbench.base.paths",
    "workbench.config": "workbench.rundir.config",
    "workbench.hookspecs": "workbench.host.hookspecs",
    "workbench.plugins": "workbench.host.manager",
    "workbench.registry": "workbench.host.registry",
    "workbench.validation": "workbench.host.validation",
    "workbench.model": "workbench.modeling.model",
    "workbench.layers": "workbench.modeling.layers",
    "workbench.optimizers": "workbench.modeling.optimizers",
    "workbench.regularization": "workbench.modeling.regularization",
    "workbench.training_metrics": "workbench.modeling.metrics",
    "workbench.idx": "workbench.data.idx",
    "workbench.imagefolder": "workbench.data.folder",
}


class _Alias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds an old path and loads it as the module that holds its code now."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname not in MOVED:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec):
        new = MOVED[spec.name]
        warnings.warn(f"{spec.name} moved to {new}; import from workbench.api instead (the old path goes in 0.3)",
                      DeprecationWarning, stacklevel=2)
        return importlib.import_module(new)

    def exec_module(self, module) -> None:
        pass  # the module is already executed: it is the new one


def install() -> None:
    """Answer the old paths (idempotent)."""
    if not any(isinstance(finder, _Alias) for finder in sys.meta_path):
        sys.meta_path.append(_Alias())
