"""The test kit for plugin authors: one call checks a plugin the way ganbench will use it.

::

    from workbench.testing import check_dataset_plugin, check_loss_plugin, check_model_plugin

    def test_my_gan():
        check_model_plugin("my_gan", hyperparams={"hidden": 32})

``check_model_plugin`` trains the model for two steps on tiny generated images
through the real engine (``prepare_run`` and ``Run.train``), reloads its
safetensors checkpoint and compares every weight, resumes it for a third step
and checks that the result equals three steps without a break, and draws a
sample grid from the checkpoint. ``check_dataset_plugin`` loads a dataset,
checks what it returned and trains a tiny reference GAN on it;
``check_loss_plugin`` checks a loss's values and gradients and trains the tiny
GAN with it. Each raises ``PluginCheckError`` (an ``AssertionError``, so pytest
shows its message) saying what is wrong, or returns a ``KitReport``.

``shape_images`` makes the kit's generated images (ellipses and boxes, with
labels), for a test that needs a small dataset of its own.

``scratch_env`` makes a throwaway virtual environment that sees every package
of this one, to test a plugin's packaging (``pip install -e``, entry points)
without touching the environment you work in.

This module is the kit's public face; its parts live in ``workbench.testkit``.
"""

from workbench.testkit.dataset_check import check_dataset_plugin
from workbench.testkit.kit_plugin import KIT_DATASET, KIT_MODEL, shape_images
from workbench.testkit.loss_check import check_loss_plugin
from workbench.testkit.model_check import check_model_plugin
from workbench.testkit.report import KitReport, PluginCheckError
from workbench.testkit.scratch import ScratchEnv, scratch_env

__all__ = ["KIT_DATASET", "KIT_MODEL", "KitReport", "PluginCheckError", "ScratchEnv", "check_dataset_plugin",
           "check_loss_plugin", "check_model_plugin", "scratch_env", "shape_images"]
