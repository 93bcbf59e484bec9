"""``ganbench bench`` end to end: a real subprocess prints both rates and the ratio, and writes the comparison."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from workbench.bench.runner import WorkloadBench
from workbench.bench.workloads import WORKLOADS
from workbench.commands.bench import WORKLOAD_NAMES

RATIO_LINE = re.compile(r"^mlp_gan: classic ([\d,.]+) images/s, ganbench ([\d,.]+) images/s, ratio ([\d.]+)x "
                        r"on cpu \(\d+ threads\)", re.M)


def test_bench_prints_both_rates_the_ratio_and_the_device_and_writes_the_comparison(cli, tmp_path):
    out = tmp_path / "cmp"
    result = cli("bench", "--model", "mlp_gan", "--steps", "6", "--warmup", "2", "--device", "cpu",
                 "--out", str(out))
    assert result.returncode == 0, result.stderr
    match = RATIO_LINE.search(result.stdout)
    assert match, result.stdout
    classic, engine, ratio = (float(g.replace(",", "")) for g in match.groups())
    assert classic > 0 and engine > 0
    assert ratio == pytest.approx(engine / classic, rel=0.02)
    assert "| mlp_gan | PyTorch-GAN gan.py | 64 | 6 |" in result.stdout
    folder = out / "mlp_gan"
    rows = (folder / "losses.csv").read_text().splitlines()
    assert rows[0] == "step,classic_d_loss,classic_g_loss,ganbench_d_loss,ganbench_g_loss"
    assert [int(r.split(",")[0]) for r in rows[1:]] == [2, 4, 6, 8]  # one row per 2-step window
    for name in ("losses.png", "classic-samples.png", "ganbench-samples.png"):
        assert (folder / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    saved = json.loads((folder / "result.json").read_text())
    assert saved["workload"] == "mlp_gan" and saved["steps"] == 6 and saved["batch_size"] == 64


def test_bench_json_reports_every_repeat(cli):
    result = cli("bench", "-m", "aae", "--steps", "3", "--warmup", "1", "--repeats", "2", "--device", "cpu",
                 "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["device"].startswith("cpu")
    (aae,) = report["results"]
    assert aae["workload"] == "aae" and len(aae["classic_images_per_s"]) == len(aae["ganbench_images_per_s"]) == 2
    assert "repeat 2/2" in result.stderr  # progress goes to stderr with --json


@pytest.mark.parametrize("args, message", [
    (("--repeats", "0"), "--repeats must be at least 1; got 0."),
    (("-m", "mlp_gan", "--image-folder", "faces"), "--image-folder is for the dcgan-64 workload"),
    (("-m", "dcgan-64", "--dataset", "mnist"), "give --image-folder DIR instead of --dataset"),
    (("-m", "dcgan-64", "--image-folder", "no-such-folder"), "--image-folder no-such-folder is not a folder."),
    (("-m", "mlp_gan", "--warmup", "0", "--device", "cpu"), "--warmup must be at least 1; got 0."),
    (("-m", "mlp_gan", "--dataset", "nope", "--device", "cpu"), 'Unknown dataset "nope"'),
])
def test_bench_user_errors_are_one_sentence(cli, args, message):
    result = cli("bench", *args)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_the_command_names_every_workload_without_importing_torch():
    assert WORKLOAD_NAMES == tuple(WORKLOADS)


def test_the_celeba_like_workload_runs_both_paths_on_the_same_generated_jpegs(plugins, tmp_path):
    bench = WorkloadBench(WORKLOADS["dcgan-64"], plugins, tmp_path, device="cpu", warmup=1, steps=1, batch_size=4)
    faces = sorted((tmp_path / "faces" / "faces").glob("*.jpg"))
    assert len(faces) == (1 + 1 + 2) * 4  # enough that the classic DataLoader never starts a second epoch
    result = bench.measure()
    assert result.classic_rate > 0 and result.engine_rate > 0
    assert result.samples["classic"].shape == result.samples["ganbench"].shape == (64, 3, 64, 64)
    assert list((tmp_path / "cache").glob("folder-64px-3ch-*.safetensors"))  # not in the user's cache folder
