"""The side-by-side benchmark: the classic scripts' loops against ganbench's engine.

``classic_models`` and ``classic_loops`` hold PyTorch-GAN's ``gan.py`` and
``aae.py`` and the PyTorch DCGAN tutorial as those scripts write them
(torchvision datasets with per-sample transforms in a DataLoader, NumPy noise,
a Sigmoid and ``BCELoss``, ``.item()`` and a print every batch). ``classic_data``
feeds them the very images the engine trains on; ``workloads`` names the four
measured cases; ``runner`` times both paths in one process (the engine through
``prepare_run`` and ``Run.train``); ``report`` prints and writes the results.
``ganbench bench`` (``workbench.commands.bench``) is the front end.
"""
