"""An example third-party ganbench plugin: the WGAN of Arjovsky et al., CIFAR-10, and two losses.

Each module is one plugin, named in the ``ganbench`` entry-point group of this
distribution's ``pyproject.toml``.
"""
