"""ganbench: a plugin-based workbench for training and studying GANs.

The core (this package) knows no particular GAN. Models, datasets and losses
arrive as plugins through the ``ganbench`` entry-point group; see
``workbench.host.hookspecs`` for the hooks and ``docs/plugins.md`` for the guide.
"""

import pluggy

__version__ = "0.1.0"

hookimpl = pluggy.HookimplMarker("ganbench")
"""Marks a plugin's function as the implementation of a ganbench hook."""

from workbench import _moved  # noqa: E402  (the 0.1 import paths, answered for this release)

_moved.install()
