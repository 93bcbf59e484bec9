"""``ganbench run --nproc-per-node N``: the same run under torchrun, one process per device of this machine.

The launcher is PyTorch's own (``torch.distributed.run``, called in this process, as
``python -m torch.distributed.run --standalone --nproc-per-node N -m workbench run ...`` would):
rendezvous on localhost, the agent that watches the workers and ends them all when one fails. On a
cluster, users start torchrun (or srun) themselves; see docs/distributed.md.
"""

from __future__ import annotations

import logging

from workbench.base.errors import ConfigError

FLAG = "--nproc-per-node"


def process_count(value: str) -> int:
    """``N`` (at least 1) or ``gpu`` (every GPU CUDA sees); one sentence for anything else."""
    if value == "gpu":
        import torch

        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ConfigError(f"{FLAG} gpu starts one process per GPU, but CUDA sees no GPU here; give a number "
                              f"of processes (with --device cpu) instead.")
        return count
    try:
        count = int(value)
    except ValueError:
        raise ConfigError(f'{FLAG} must be a number of processes or "gpu"; got "{value}".') from None
    if count < 1:
        raise ConfigError(f"{FLAG} must be at least 1; got {count}.")
    return count


def without_flag(argv: list[str]) -> list[str]:
    """``argv`` with ``--nproc-per-node N`` (or ``=N``) taken out: what every worker runs."""
    kept, skip = [], False
    for item in argv:
        if skip:
            skip = False
        elif item == FLAG:
            skip = True
        elif not item.startswith(FLAG + "="):
            kept.append(item)
    return kept


def run_under_torchrun(nproc: int, run_args: list[str]) -> int:
    """Start ``python -m workbench run RUN_ARGS`` ``nproc`` times under torchrun's agent; return the job's exit code.

    Rank 0 prints the run's progress and its one-sentence errors; the agent's own log lines are silenced.
    """
    from torch.distributed.elastic.multiprocessing import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import get_args_parser, run

    for name in list(logging.root.manager.loggerDict):  # the agent's notices (OMP_NUM_THREADS=1, signals)
        if name.startswith(("torch.distributed.elastic", "torch.distributed.run")):
            logging.getLogger(name).setLevel(logging.CRITICAL)
    args = get_args_parser().parse_args(["--standalone", "--nproc-per-node", str(nproc), "--module",
                                         "workbench", "run", *run_args])
    try:
        run(args)
    except ChildFailedError as exc:
        failures = exc.failures
        failure = failures.get(min(failures), next(iter(failures.values())))
        code = failure.exitcode
        return 128 - code if code < 0 else code  # a worker ended by signal N reads as 128+N, as in a shell
    except SignalException as exc:  # the agent was told to stop: it has ended the workers
        return 128 + int(exc.sigval)
    return 0
