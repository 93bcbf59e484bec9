"""What a model is made of: the GanModel contract and its base classes, layers, optimizers, penalties.

Plugins subclass ``model.GanModel`` / ``TwoNetworkGAN``; the engine (``workbench.engine``) drives them.
"""
