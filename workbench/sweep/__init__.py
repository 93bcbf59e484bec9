"""Sweeps: many runs of one model over settings and seeds, searched with Optuna, compared by sample quality.

Orchestration only: a sweep's trials are ordinary run directories trained by
``ganbench run`` child processes; the engine knows nothing about sweeps.

- ``space``     parsing ``--set KEY=V1,V2`` and ``KEY=lo..hi[:log]`` against the declared settings
- ``manifest``  ``sweep.json``: what the sweep is, its trials and their status (shared by joined drivers)
- ``study``     the Optuna study in a journal file inside the sweep folder
- ``driver``    launching, watching, pruning and stopping the trial processes
- ``compare``   the table, the ranking, the curves plot and the contact sheet
"""
