"""Where datasets and decoded-image caches live by default."""

from __future__ import annotations

import os
from pathlib import Path


def data_home() -> Path:
    """The default folder for downloaded datasets: ``$GANBENCH_DATA`` or ``~/.cache/ganbench/data``."""
    return Path(os.environ.get("GANBENCH_DATA", "~/.cache/ganbench/data")).expanduser()


def cache_home() -> Path:
    """The folder for decoded-image caches: ``$GANBENCH_CACHE`` or ``~/.cache/ganbench/cache``."""
    return Path(os.environ.get("GANBENCH_CACHE", "~/.cache/ganbench/cache")).expanduser()
