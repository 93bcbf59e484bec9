"""The side-by-side benchmark: reference training loops against ganbench's engine.

The core knows no particular GAN. Plugins register ``Workload``s through the
``ganbench_register_workloads`` hook (``workloads``): an engine model plugin
paired with a reference loop of the same algorithm and that reference's own data
pipeline (the core plugin ``classic`` registers the classic scripts this way).
``runner`` times both paths in one process (the engine through ``prepare_run``
and ``Run.train``); ``whole_process`` times the reference scripts and
``ganbench run`` as processes; ``report`` prints and writes the results.
``ganbench bench`` (``workbench.cli.commands.bench``) is the front end.
"""
