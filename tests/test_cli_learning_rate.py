"""``--lr`` reaches both optimizers: the learning rate stored in the checkpoint's optimizer state is the one given."""

from __future__ import annotations

import json

from safetensors import safe_open


def optimizer_groups(checkpoint) -> dict[str, list[dict]]:
    """The optimizers' param_groups as the checkpoint stores them (JSON in the safetensors header's metadata)."""
    with safe_open(str(checkpoint), framework="pt") as handle:
        return json.loads(handle.metadata()["ganbench"])["optimizer_groups"]


def test_lr_flag_is_the_learning_rate_of_both_optimizers(cli, tmp_path):
    done = cli("run", "--plugin", "mlp_gan", "--steps", "2", "--lr", "1e-3", "--runs-dir", str(tmp_path / "runs"),
               "--name", "lr", "--set", "sample_every=0", env={"OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr
    groups = optimizer_groups(tmp_path / "runs" / "lr" / "checkpoints" / "latest.safetensors")
    assert sorted(groups) == ["discriminator", "generator"]
    assert [group["lr"] for name in sorted(groups) for group in groups[name]] == [1e-3, 1e-3]
    assert all(tuple(group["betas"]) == (0.5, 0.999) for name in groups for group in groups[name])
