"""Offline sample-quality metrics: the machinery behind the ``quality`` metric plugins.

- ``classifier``: a small CNN trained once per dataset and cached on disk; its
  penultimate features replace Inception's.
- ``reference``: the held-out real split, embedded by that classifier.
- ``frechet``, ``coverage``, ``manifold``: Fréchet distance, class coverage and
  KL, k-NN precision and recall; ``domain`` applies them to generated images.
- ``inception``, ``detector``, ``paper_metrics``: the papers' Inception FID and
  KID with NVlabs' protocol (``fid50k_full``): the TorchScript detector found
  on disk, the training split's statistics cached; ``sharded`` splits the
  work over the ranks of a torchrun job.
- ``evaluate``: ``Evaluator`` runs the selected metric plugins; ``periodic``
  calls it every ``eval_every`` training steps; ``history`` reads results back.

Nothing is imported here, so ``ganbench runs`` can read results without torch.
"""
