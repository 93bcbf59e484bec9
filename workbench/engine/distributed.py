"""One run on many processes (torchrun): the job's ranks, the process group, gradients averaged, decisions shared.

torchrun (or srun) starts one process per device and sets ``WORLD_SIZE``, ``RANK`` and ``LOCAL_RANK``;
``join_job`` reads them and joins the process group (NCCL for CUDA tensors, gloo for CPU ones).

Gradients are averaged in a step pre-hook of every optimizer (Horovod's DistributedOptimizer idea):
all gradients of that optimizer as ONE flattened ``all_reduce`` just before it steps. This works for
``TwoNetworkGAN`` and for a plugin's own ``train_step`` alike (the plugin calls its own modules, never a
wrapper), nothing hooks into autograd (so WGAN-GP's ``create_graph`` penalty and D frozen during G's step
are untouched), and there are no "unused parameters". What it gives up against DistributedDataParallel:
overlapping the communication with the backward pass (see docs/distributed.md).

``Lockstep`` keeps every rank's decisions identical: when to log, stop, pause or checkpoint are taken at
steps every rank knows, with one collective per logging interval carrying the metrics and the requests.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import nn

from workbench.base.errors import ConfigError, GanbenchError
from workbench.engine.checkpoint import match_layouts
from workbench.engine.state import broadcast_tensors, load_object_states, object_states

# A rank that dies is noticed at once by gloo (its sockets close) and by torchrun's agent, which ends the
# other ranks; this bounds the wait where neither happens (a rank hung, a node gone without closing).
COLLECTIVE_TIMEOUT = timedelta(minutes=10)


class DistributedError(GanbenchError):
    """A collective failed: another process of the job died or the network between them dropped."""

    exit_code = 1


@dataclass(frozen=True)
class Ranks:
    """This process's place in the job: ``rank`` of ``world`` processes, ``local_rank`` on its machine."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def distributed(self) -> bool:
        return self.world > 1

    @property
    def leader(self) -> bool:
        """Rank 0: the one process that reads the requests and writes the run directory."""
        return self.rank == 0


SINGLE = Ranks()


def ranks_from_environment(env=os.environ) -> Ranks:
    """The ranks torchrun (or srun through torchrun) set for this process; one process when there are none."""
    if "WORLD_SIZE" not in env:
        return SINGLE
    try:
        return Ranks(int(env["RANK"]), int(env["WORLD_SIZE"]), int(env.get("LOCAL_RANK", 0)))
    except (KeyError, ValueError):
        raise ConfigError("WORLD_SIZE is set but RANK or LOCAL_RANK is missing or not a number; start "
                          "distributed runs with torchrun.") from None


def join_job(env=os.environ) -> Ranks:
    """Join the process group of the torchrun job this process belongs to (nothing for one process)."""
    ranks = ranks_from_environment(env)
    if ranks.distributed and not dist.is_initialized():
        backend = "cpu:gloo,cuda:nccl" if torch.cuda.is_available() else "gloo"
        if torch.cuda.is_available():
            torch.cuda.set_device(ranks.local_rank % torch.cuda.device_count())
        dist.init_process_group(backend, timeout=COLLECTIVE_TIMEOUT)
    return ranks


def leave_job(ranks: Ranks) -> None:
    """Wait for every rank (the followers wait for rank 0's last files), then leave the process group."""
    if not (ranks.distributed and dist.is_initialized()):
        return
    with contextlib.suppress(Exception):  # a rank already gone: nothing to wait for
        dist.barrier()
    with contextlib.suppress(Exception):
        dist.destroy_process_group()


def job_device(requested: str, ranks: Ranks) -> str:
    """The device of this rank: ``cuda:LOCAL_RANK`` for cuda (and auto with a GPU), the CPU for cpu."""
    if not ranks.distributed:
        return requested
    if requested == "mps":
        raise ConfigError("Distributed training runs on CUDA (NCCL) or the CPU (gloo), not on mps.")
    if requested.startswith("cuda:"):
        raise ConfigError("Under torchrun each process takes the GPU of its LOCAL_RANK; use --device cuda, "
                          "and CUDA_VISIBLE_DEVICES to choose the GPUs.")
    if requested == "cuda" or (requested == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            return requested  # pick_device says in one sentence that there is no GPU
        return f"cuda:{ranks.local_rank % torch.cuda.device_count()}"
    return "cpu"


def rank_seed(seed: int, rank: int) -> int:
    """The noise seed of ``rank``: the run's own seed on rank 0 (a one-process run draws the same), distinct
    and reproducible elsewhere."""
    return seed if rank == 0 else (seed * 1_000_003 + rank * 7_919) % 2**63


class _collective(contextlib.AbstractContextManager):
    """Turns a failed collective into one sentence naming this rank (each surviving rank says the same)."""

    def __init__(self, action: str):
        self.action = action

    def __exit__(self, kind, exc, tb):
        if exc is not None and isinstance(exc, (RuntimeError, dist.DistError)) and not isinstance(exc, GanbenchError):
            raise DistributedError(f"Rank {dist.get_rank()} lost contact with the other processes of the job "
                                   f"while {self.action} (another process died or the network dropped).") from None
        return False


# -- the start: every rank from rank 0's state ----------------------------------------------------------------
def broadcast_object(value, ranks: Ranks):
    """``value`` as rank 0 has it, on every rank (pickled over gloo: only between the job's own processes)."""
    box = [value if ranks.leader else None]
    with _collective("starting"):
        dist.broadcast_object_list(box, src=0, device=torch.device("cpu"))
    return box[0]


@torch.no_grad()
def share_start_state(model, position: dict, ranks: Ranks) -> dict:
    """Give every rank rank 0's weights, buffers, optimizer state and ``position`` (step, epoch, batch ...).

    Only rank 0 reads a checkpoint, so a job on many machines needs the run folder on rank 0's machine only.
    """
    if not ranks.distributed:
        return position
    with _collective("starting"):
        for tensor in broadcast_tensors(model):  # networks, averages (the EMA), module-held buffers (ADA's p)
            dist.broadcast(tensor.data, src=0)
    states = {name: _cpu(opt.state_dict()) for name, opt in model.optimizers.items()} if ranks.leader else None
    objects = object_states(model) if ranks.leader else None
    states, objects, position = broadcast_object((states, objects, position), ranks)
    if not ranks.leader:
        for name, opt in model.optimizers.items():
            if states[name]["state"]:
                opt.load_state_dict(states[name])
                match_layouts(opt)
        load_object_states(model, objects)
    return position


def all_reduce_sum(tensor: torch.Tensor) -> None:
    """Sum ``tensor`` over the ranks in place (ADA's statistic, the fp16 scalers' overflow flags)."""
    with _collective("training"):
        dist.all_reduce(tensor)


def _cpu(state: dict) -> dict:
    return {"state": {i: {k: v.cpu() if isinstance(v, torch.Tensor) else v for k, v in slots.items()}
                      for i, slots in state["state"].items()}, "param_groups": state["param_groups"]}


# -- gradients -----------------------------------------------------------------------------------------------
def average_gradients(model, ranks: Ranks) -> None:
    """Before each optimizer step, average that optimizer's gradients over the ranks in one all_reduce.

    A parameter without a gradient on every rank keeps none (Adam skips it, as in one process); one that
    has a gradient somewhere gets the average, counting the ranks without one as zero.
    """
    if not ranks.distributed:
        return
    for opt in model.optimizers.values():
        opt.register_step_pre_hook(_average_before_step)


def _average_before_step(optimizer, args, kwargs) -> None:
    params = [p for group in optimizer.param_groups for p in group["params"]]
    if not params:
        return
    grads = [p.grad for p in params]
    device = params[0].device
    flat = torch.cat([g.reshape(-1).float() if g is not None else p.new_zeros(p.numel(), dtype=torch.float32)
                      for p, g in zip(params, grads)]
                     + [torch.tensor([g is not None for g in grads], dtype=torch.float32, device=device)])
    with _collective("averaging the gradients"):
        dist.all_reduce(flat)
    present = flat[-len(params):].tolist() if any(g is None for g in grads) else None
    flat = flat[:-len(params)].div_(dist.get_world_size())
    offset = 0
    for index, (p, g) in enumerate(zip(params, grads)):
        chunk = flat[offset:offset + p.numel()].view(p.shape)
        offset += p.numel()
        if g is not None:
            g.copy_(chunk)
        elif present[index] > 0:
            p.grad = chunk.to(p.dtype).clone(memory_format=torch.preserve_format)


def all_agree(verdict: torch.Tensor) -> torch.Tensor:
    """1 where every rank's 0/1 ``verdict`` is 1 (``on_nan=skip``: every rank keeps, or every rank undoes, a step)."""
    shared = verdict.reshape(1).clone()
    with _collective("checking the step"):
        dist.all_reduce(shared, op=dist.ReduceOp.MIN)
    return shared[0]


def graphs_in_job(graphed: bool, ranks: Ranks) -> tuple[bool, str | None]:
    """Whether the step is replayed as a CUDA graph in this job, and the warning when torchrun turned it off."""
    if graphed and ranks.distributed:  # a collective inside a captured graph has not been measured yet
        return False, ("CUDA graphs are turned off under torchrun (the gradient all_reduce inside a captured "
                       "step has not been measured); the step runs eagerly.")
    return graphed, None


# -- BatchNorm -------------------------------------------------------------------------------------------------
def convert_sync_batch_norm(model, device: torch.device, ranks: Ranks) -> None:
    """``sync_bn=true``: BatchNorm statistics over the whole job's batch (SyncBatchNorm, CUDA only)."""
    if device.type != "cuda":
        raise ConfigError(f"sync_bn=true needs CUDA (SyncBatchNorm has no {device.type} kernel); train with "
                          f"sync_bn=false there.")
    if not ranks.distributed:
        return  # one process: SyncBatchNorm would be plain BatchNorm anyway
    for net in model.networks.values():
        converted = nn.SyncBatchNorm.convert_sync_batchnorm(net)
        if converted is not net:
            raise ConfigError("sync_bn=true cannot convert a network that is itself one BatchNorm layer.")


class _LocalBatchNorm(nn.modules.batchnorm._BatchNorm):
    def _check_input_dim(self, input):  # SyncBatchNorm takes any rank >= 2 input: so does its local stand-in
        pass


@contextlib.contextmanager
def batch_norm_on_this_rank(model):
    """SyncBatchNorm layers as plain BatchNorm while one rank alone runs the networks (rank 0's sample grids
    and quality metrics): a collective only rank 0 entered would wait for ranks that never come."""
    synced = [m for net in model.networks.values() for m in net.modules() if isinstance(m, nn.SyncBatchNorm)]
    for module in synced:
        module.__class__ = _LocalBatchNorm
    try:
        yield
    finally:
        for module in synced:
            module.__class__ = nn.SyncBatchNorm


# -- decisions in lockstep -------------------------------------------------------------------------------------
_FLAGS = ("stop", "pause", "checkpoint", "next_step")


class Lockstep:
    """The log clock and the run control of a distributed run: the same decisions at the same step on every rank.

    The loop asks ``due`` after every step; it answers from the step alone (every ``log_every`` steps, or at
    the step rank 0 chose at the last sync to come about ``log_seconds`` later). At that step ``share`` does
    the interval's one collective: the metrics window, every rank's stop/pause/checkpoint requests (request
    files read by rank 0, Ctrl-C and SIGTERM on any rank) and rank 0's choice of the next sync step. The
    flags the loop reads (``stop_requested``, ``paused``, ``checkpoint_requested``) change only there.
    """

    stop_reason = "stopped"

    def __init__(self, local, every: int, seconds: float, step: int, ranks: Ranks):
        self.local, self.every, self.seconds, self.ranks = local, every, seconds, ranks
        self.stop_requested = self.paused = self.checkpoint_requested = False
        self.next_step = step + 1  # the first sync right after the first step: its time sets the pace
        self.restart(step, time.monotonic())

    # the log clock
    def restart(self, step: int, now: float) -> None:
        self.since_step, self.since_time = step, now

    def due(self, step: int, now: float, window_full: bool) -> bool:
        return window_full or step % self.every == 0 or step >= self.next_step

    # the run control
    def poll(self, now: float) -> None:
        """Read this rank's own requests; they reach the loop at the next sync."""
        self.local.poll(now)

    def request_stop(self, reason: str = "stopped") -> None:
        self.local.request_stop(reason)

    def share(self, packed: torch.Tensor, step: int, now: float) -> torch.Tensor:
        """All-reduce ``packed`` (the metrics window) with the requests; return its average over the ranks."""
        local = self.local
        flags = [float(local.stop_requested), float(local.paused), float(local.checkpoint_requested), 0.0]
        if self.ranks.leader:
            rate = (step - self.since_step) / max(now - self.since_time, 1e-9)
            flags[3] = step + max(1, min(self.every, int(rate * self.seconds)))
        local.checkpoint_requested = False  # carried by this collective
        both = torch.cat([packed.double(), torch.tensor(flags, dtype=torch.float64, device=packed.device)])
        with _collective("sharing the metrics"):
            dist.all_reduce(both)
            shared = both[-len(_FLAGS):].tolist()  # NCCL reports a lost peer when the result is waited for
        self.stop_requested = self.stop_requested or shared[0] > 0
        self.paused = shared[1] > 0
        self.checkpoint_requested = self.checkpoint_requested or shared[2] > 0
        self.next_step = int(shared[3])
        return (both[:-len(_FLAGS)] / self.ranks.world).to(packed.dtype)

    def exchange_requests(self, step: int) -> None:
        """A collective for the requests alone (while paused every rank waits here together)."""
        self.share(torch.zeros(0), step, time.monotonic())
