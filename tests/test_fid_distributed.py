"""Evaluation during a torchrun job (gloo on this CPU): the ranks share the samples and their Inception features,
rank 0 writes, and the numbers are those one process gets from the same checkpoint and noise."""

from __future__ import annotations

import pytest

import json
import os
import subprocess
import sys

from conftest import run_cli
from inception_standin import save_standin

from workbench.quality.history import eval_events

pytestmark = pytest.mark.slow  # end-to-end processes: `pytest -m slow` (CI runs it)

STEPS = 10
SAMPLES = 5000  # three chunks of generate()'s 2048: rank 0 draws the first and the last, rank 1 the middle one


def test_two_ranks_share_the_evaluation_and_agree_with_one_process(tmp_path, tiny_mnist):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", "COLUMNS": "120",
           "GANBENCH_CACHE": str(tmp_path / "cache"), "GANBENCH_INCEPTION": str(save_standin(tmp_path / "d.pt"))}
    env.pop("WORLD_SIZE", None)
    job = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                          "-m", "workbench", "run", "-p", "mlp_gan", "-d", "mnist", "--data-root", str(tiny_mnist),
                          "--device", "cpu", "--steps", str(STEPS), "--name", "two", "--set", "batch_size=32",
                          "--set", "sample_every=0", "--set", f"eval_every={STEPS}", "--set",
                          f"eval_samples={SAMPLES}", "--set", "eval_metrics=fd+fid+kid"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert job.returncode == 0, job.stderr
    [event] = eval_events(tmp_path / "runs" / "two" / "events.jsonl")  # rank 0 alone writes
    assert event["samples"] == SAMPLES and set(event["metrics"]) == {"fd", "fid", "kid"}
    assert f"{SAMPLES:,} samples drawn and embedded by Inception by 2 ranks" in event["notes"]
    # one process, the same checkpoint (step 10) and the same noise (the run's seed 0 + 2)
    alone = run_cli("eval", "runs/two", "--metric", "fd", "--metric", "fid", "--metric", "kid", "-n", str(SAMPLES),
                    "--seed", "2", "--json", "--no-log", cwd=tmp_path, env=env)
    assert alone.returncode == 0, alone.stderr
    metrics = json.loads(alone.stdout)["metrics"]
    for name in ("fd", "fid"):
        assert abs(metrics[name] - event["metrics"][name]) <= 1e-6 * max(1.0, abs(metrics[name])), name
    # KID draws subsets by position: equal only if the shares were put back in one process's order
    assert abs(metrics["kid"] - event["metrics"]["kid"]) <= 1e-9 + 1e-6 * abs(metrics["kid"])
