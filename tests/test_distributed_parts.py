"""The parts of distributed training that need no second process: sharding, launching, lockstep, BatchNorm."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from workbench.base.errors import ConfigError
from workbench.cli.console import PlainProgress
from workbench.cli.torchrun import process_count, without_flag
from workbench.data.device import DeviceImages
from workbench.engine.distributed import (Lockstep, Ranks, batch_norm_on_this_rank, convert_sync_batch_norm,
                                          rank_seed, ranks_from_environment)
from workbench.rundir.control import RunControl


def test_each_rank_takes_a_disjoint_share_of_every_batch_of_the_one_process_order():
    images = torch.arange(100, dtype=torch.uint8).view(100, 1, 1, 1)
    whole = DeviceImages(images, 12, torch.device("cpu"), seed=3)
    shares = [DeviceImages(images, 12, torch.device("cpu"), seed=3, rank=r, world=4) for r in range(4)]
    assert all(s.batch_size == 3 and s.global_batch_size == 12 and len(s) == len(whole) == 8 for s in shares)
    for epoch in (0, 1):
        for start in (0, 5):  # a resumed position: batch 5 is the same images however many ranks share it
            per_rank = [list(s.batch_indices(epoch, start)) for s in shares]
            for b, batch in enumerate(whole.batch_indices(epoch, start)):
                joined = torch.cat([per_rank[r][b] for r in range(4)])
                assert torch.equal(joined, batch)  # disjoint (a permutation's slices) and together the batch


def test_a_batch_that_does_not_divide_among_the_ranks_is_refused_in_one_sentence():
    with pytest.raises(ConfigError, match=r"^The batch size 10 does not divide among 4 processes; choose a "
                                          r"multiple of 4\.$"):
        DeviceImages(torch.zeros(20, 1, 2, 2, dtype=torch.uint8), 10, torch.device("cpu"), seed=0, world=4)


def test_the_launcher_reads_nproc_and_leaves_the_flag_out_of_the_workers_command():
    assert process_count("3") == 3
    for bad, message in (("0", "at least 1"), ("two", 'a number of processes or "gpu"')):
        with pytest.raises(ConfigError, match=message):
            process_count(bad)
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA sees no GPU here"):
            process_count("gpu")
    assert without_flag(["-p", "dcgan", "--nproc-per-node", "2", "--steps", "5", "--nproc-per-node=4"]) == \
        ["-p", "dcgan", "--steps", "5"]


def test_the_ranks_come_from_torchruns_environment():
    assert ranks_from_environment({}) == Ranks(0, 1, 0)
    assert ranks_from_environment({"WORLD_SIZE": "8", "RANK": "5", "LOCAL_RANK": "1"}) == Ranks(5, 8, 1)
    with pytest.raises(ConfigError, match="RANK or LOCAL_RANK is missing"):
        ranks_from_environment({"WORLD_SIZE": "2"})
    assert rank_seed(42, 0) == 42 and len({rank_seed(42, r) for r in range(8)}) == 8


def test_lockstep_decides_from_the_step_alone_and_hands_requests_on_only_at_a_sync():
    local = RunControl()
    lockstep = Lockstep(local, every=50, seconds=1.0, step=10, ranks=Ranks(0, 2, 0))
    assert lockstep.due(11, now=0.0, window_full=False)  # the first sync: right after the first step
    lockstep.next_step = 30
    assert not lockstep.due(20, now=1e9, window_full=False), "time must not decide: it differs per rank"
    assert lockstep.due(30, 0.0, False) and lockstep.due(50, 0.0, False) and lockstep.due(21, 0.0, True)
    local.request_stop()
    lockstep.poll(0.0)
    assert not lockstep.stop_requested, "a request reaches the loop at the next sync, on every rank at once"


def test_sync_bn_is_refused_off_cuda_and_rank_0_draws_grids_with_local_batch_norm():
    net = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4))
    model = type("M", (), {"networks": {"generator": net}})()
    with pytest.raises(ConfigError, match=r"^sync_bn=true needs CUDA \(SyncBatchNorm has no cpu kernel\)"):
        convert_sync_batch_norm(model, torch.device("cpu"), Ranks(0, 2, 0))
    synced = nn.Sequential(nn.Linear(4, 4), nn.SyncBatchNorm(4))
    model.networks = {"generator": synced}
    with batch_norm_on_this_rank(model):
        assert not isinstance(synced[1], nn.SyncBatchNorm)
        assert synced(torch.randn(8, 4)).shape == (8, 4)  # plain BatchNorm on this rank's batch
    assert type(synced[1]) is nn.SyncBatchNorm


def test_the_progress_line_states_the_processes_and_the_batch_per_rank(tmp_path):
    lines = []
    progress = PlainProgress(type("S", (), {"write": lambda self, t: lines.append(t), "flush": lambda self: None})())
    progress({"type": "run_start", "total_steps": 10, "steps_per_epoch": 5, "config": {"name": "r", "model": "m",
              "dataset": "d"}, "dataset_size": 100, "device": "cpu (1 thread)", "batch_size": 64, "world_size": 2,
              "batch_per_rank": 32})
    assert "cpu (1 thread) × 2 processes, batch 64 = 2 × 32, 10 steps" in lines[0]
