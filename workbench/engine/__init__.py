"""Training: the loop, its events, checkpoints, devices and data on the device.

The CLI and the workbench both drive ``workbench.engine.run.prepare_run`` and
``Run.train``; neither has a loop of its own.
"""
