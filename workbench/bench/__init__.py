"""The side-by-side benchmark: the classic scripts' loops against ganbench's engine.

``classic_models`` and ``classic_loops`` hold PyTorch-GAN's ``gan.py`` and
``aae.py`` and the PyTorch DCGAN tutorial as those scripts write them
(torchvision datasets with per-sample transforms in a DataLoader, NumPy noise,
a Sigmoid and ``BCELoss``, ``.item()`` and a print every batch). ``classic_data``
prepares their data from the very images the engine trains on; ``engine_path``
times the real engine; ``workloads`` names the four measured cases and
``runner`` runs both paths in one process. ``ganbench bench`` is the front end.
"""
