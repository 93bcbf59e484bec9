"""Training: the loop, its events, checkpoints, devices and data on the device.

The CLI, the workbench and sweeps all drive ``workbench.engine.run.prepare_run`` (building a run)
and ``workbench.engine.training.Run.train`` (the loop); none has a loop of its own.
"""
