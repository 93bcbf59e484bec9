"""Offline sample-quality metrics: the machinery behind the ``quality`` metric plugins.

- ``classifier``: a small CNN trained once per dataset and cached on disk; its
  penultimate features replace Inception's.
- ``reference``: the held-out real split, embedded by that classifier.
- ``frechet``, ``coverage``, ``manifold``: Fréchet distance, class coverage and
  KL, k-NN precision and recall; ``domain`` applies them to generated images.
- ``inception``: the standard Inception FID/KID, only when a package and its
  weights are on disk.
- ``evaluate``: ``Evaluator`` runs the selected metric plugins; ``periodic``
  calls it every ``eval_every`` training steps; ``history`` reads results back.

Nothing is imported here, so ``ganbench runs`` can read results without torch.
"""
