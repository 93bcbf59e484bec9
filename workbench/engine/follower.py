"""The ranks other than 0 of a torchrun job: they train in step with rank 0 and write nothing.

Rank 0 alone writes the run directory (config, events, state, grids, checkpoints) and tells the observer
plugins; a follower's ``Run`` keeps the same loop and the same decisions (``Lockstep``) with every write
left out, so its folder need not even exist on its machine.
"""

from __future__ import annotations

from pathlib import Path

from workbench.engine.training import Run
from workbench.rundir.directory import RunDir


class FollowerRunDir(RunDir):
    """Rank 0's run directory as a follower sees it: named, never written."""

    def write_state(self, **fields) -> None:
        pass


class FollowerRun(Run):
    """A rank other than 0: trains, shares its metrics and requests, and leaves every file to rank 0."""

    def _start(self) -> None:
        pass  # no event log and no state.json: rank 0 keeps them

    def notify(self, hook: str, **kwargs) -> None:
        pass  # observer plugins hear of the run once, from rank 0

    def save_checkpoint(self) -> Path:
        self.last_checkpoint_step = self.step  # rank 0 wrote it: the weights are the same on every rank
        return self.dir.checkpoints / f"step-{self.step:08d}.safetensors"

    def save_samples(self) -> None:
        self.last_sample_step = self.step

    def collect_samples(self, wait: bool = False) -> None:
        pass
