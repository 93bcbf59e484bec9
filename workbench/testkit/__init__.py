"""The pieces of the plugin authors' test kit; authors import them from ``workbench.testing``.

- ``report``: what a check returns (``KitReport``) and raises (``PluginCheckError``).
- ``kit_plugin``: the kit's own plugin: generated shapes (``shape_images``) and a tiny MLP GAN.
- ``running``: how a check drives the real engine: its folders, plugins, configuration, runs.
- ``model_check``, ``loss_check``, ``dataset_check``: one public check each.
- ``scratch``: a throwaway virtual environment for packaging tests.
"""
