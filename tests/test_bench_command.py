"""``ganbench bench`` end to end: a real subprocess prints both rates and the ratio, and writes the comparison.

The subprocesses run with one thread: these tests check behaviour, never speed, and the machine may be shared.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import workbench.bench as bench_package
from workbench import hookimpl
from workbench.base.errors import ConfigError, PluginError
from workbench.bench import report
from workbench.bench.runner import WorkloadBench
from workbench.host.workloads import registered_workloads

ONE_THREAD = {"OMP_NUM_THREADS": "1"}
RATIO_LINE = re.compile(r"^mlp_gan: classic ([\d,.]+) images/s, ganbench ([\d,.]+) images/s, ratio ([\d.]+)x "
                        r"on cpu \(1 thread\), ", re.M)

pytestmark = pytest.mark.usefixtures("one_thread")


def test_bench_prints_both_rates_the_ratio_and_the_device_and_writes_the_comparison(cli, tmp_path):
    out = tmp_path / "cmp"
    result = cli("bench", "--model", "mlp_gan", "--steps", "6", "--warmup", "2", "--repeats", "2",
                 "--device", "cpu", "--out", str(out), "--json", env=ONE_THREAD)
    assert result.returncode == 0, result.stderr
    match = RATIO_LINE.search(result.stderr)  # with --json the progress and ratio lines go to stderr
    assert match, result.stderr
    classic, engine, ratio = (float(g.replace(",", "")) for g in match.groups())
    assert classic > 0 and engine > 0 and ratio > 0
    assert "repeat 2/2" in result.stderr
    summary = json.loads(result.stdout)
    assert summary["device"].startswith("cpu (1 thread), ")  # one thread, and the processor
    (mlp,) = summary["results"]
    assert mlp["workload"] == "mlp_gan" and mlp["steps"] == 6 and mlp["batch_size"] == 64
    assert len(mlp["classic_images_per_s"]) == len(mlp["ganbench_images_per_s"]) == 2
    pairs = [e / c for c, e in zip(mlp["classic_images_per_s"], mlp["ganbench_images_per_s"])]
    assert mlp["ratios"] == pytest.approx(pairs, rel=1e-3)
    assert mlp["ratio"] == pytest.approx(sum(pairs) / 2, rel=1e-3)  # the median of two
    folder = out / "mlp_gan"
    rows = (folder / "losses.csv").read_text().splitlines()
    assert rows[0] == "step,classic_d_loss,classic_g_loss,ganbench_d_loss,ganbench_g_loss"
    assert [int(r.split(",")[0]) for r in rows[1:]] == [2, 4, 6, 8]  # one row per 2-step window
    for name in ("losses.png", "classic-samples.png", "ganbench-samples.png"):
        assert (folder / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((folder / "result.json").read_text())["workload"] == "mlp_gan"


@pytest.mark.parametrize("args, message", [
    (("--repeats", "0"), "--repeats must be at least 1; got 0."),
    (("--warmup", "0"), "--warmup must be at least 1; got 0."),
    (("--steps", "-3"), "--steps must be at least 1; got -3."),
    (("-m", "mlp_gan", "--image-folder", "faces"), "--image-folder is for the workloads that read a folder of "
                                                   "images (dcgan-64); add --model dcgan-64."),
    (("-m", "dcgan-64", "--dataset", "mnist"), "give --image-folder DIR instead of --dataset"),
    (("-m", "gan.py"), 'Unknown benchmark workload "gan.py"; choose from mlp_gan, aae, dcgan-32, dcgan-64 or all.'),
])
def test_bench_user_errors_are_one_sentence(cli, args, message):
    result = cli("bench", *args)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("kwargs, error, message", [
    ({"image_folder": "no-such-folder", "name": "dcgan-64"}, ConfigError, "is not a folder"),
    ({"image_folder": "flat", "name": "dcgan-64"}, ConfigError, "has none: pass the folder above it"),
    ({"dataset": "nope"}, PluginError, 'Unknown dataset "nope"'),
    ({"sets": ["log_every=5"]}, ConfigError, 'drop "--set log_every=5"'),
    ({"sets": ["ngf=8"]}, ConfigError, '"ngf" is not a setting of mlp_gan'),
])
def test_bench_refuses_what_it_cannot_compare(plugins, tmp_path, kwargs, error, message):
    name = kwargs.pop("name", "mlp_gan")
    if kwargs.get("image_folder") == "flat":  # JPEGs directly in the folder, as img_align_celeba holds them
        kwargs["image_folder"] = tmp_path / "flat"
        kwargs["image_folder"].mkdir()
        (kwargs["image_folder"] / "000001.jpg").write_bytes(b"\xff\xd8")
    with pytest.raises(error, match=re.escape(message)):
        WorkloadBench(registered_workloads(plugins.registry)[name], plugins, tmp_path, device="cpu", **kwargs)


def test_the_core_registers_its_workloads_through_the_hook_and_the_core_names_no_gan(plugins):
    workloads = registered_workloads(plugins.registry)
    assert plugins.errors == []
    assert list(workloads) == ["mlp_gan", "aae", "dcgan-32", "dcgan-64"]
    assert {w.model for w in workloads.values()} == {"mlp_gan", "aae", "dcgan"}
    core = Path(bench_package.__file__).parent
    for source in core.glob("*.py"):  # the benchmark's core is generic: no model name, no reference script
        text = source.read_text()
        for name in ("mlp_gan", "dcgan", "gan.py", "aae", "from plugins", "import plugins"):
            assert name not in text, f"{source.name} names {name}"


def test_a_broken_workload_plugin_is_reported_and_the_others_stay(plugins):
    from workbench.host.manager import load_plugins

    class Broken:
        @hookimpl
        def ganbench_register_workloads(self, register):
            register("not a workload")
            raise RuntimeError("boom")

    loaded = load_plugins(extra_modules=[Broken()])
    assert "mlp_gan" in registered_workloads(loaded.registry)
    # the plugin manager blames the plugin, as for a model: one sentence each, the others' workloads kept
    assert any("registered a str where a Workload belongs; it is ignored" in e
               for e in loaded.errors), loaded.errors
    assert any("ganbench_register_workloads raised RuntimeError: boom." in e for e in loaded.errors), loaded.errors


def test_the_celeba_like_workload_runs_both_paths_on_the_same_generated_jpegs(plugins, tmp_path):
    bench = WorkloadBench(registered_workloads(plugins.registry)["dcgan-64"], plugins, tmp_path, device="cpu", warmup=1, steps=2, batch_size=4,
                          sets=["ngf=4", "ndf=4", "sample_count=4"])
    assert bench.hp["ngf"] == 4 and bench.hp["batch_size"] == 4
    faces = sorted((tmp_path / "faces" / "faces").glob("*.jpg"))
    assert len(faces) == (1 + 2 + 2) * 4  # enough that the classic DataLoader never starts a second epoch
    result = bench.measure()
    assert result.classic_rate > 0 and result.engine_rate > 0
    assert result.samples["classic"].shape == result.samples["ganbench"].shape == (4, 3, 64, 64)
    assert [row[0] for row in result.curves()] == [1, 2, 3]
    assert list((tmp_path / "cache").glob("folder-64px-3ch-*.safetensors"))  # not in the user's cache folder
    assert "| dcgan-64 | PyTorch DCGAN tutorial, CelebA-like JPEG folder | 4 | 2 |" in report.table([result], "cpu")


@pytest.mark.parametrize("name, flags", [("gan_script.py", []), ("aae_script.py", ["--img_size", "32"])])
def test_the_standalone_scripts_train_print_every_batch_and_save_grids_offline(name, flags, fashion_images, tmp_path):
    from plugins.classic.scripts import HERE, write_data_root

    images = fashion_images[:512].unsqueeze(1)
    root = write_data_root("fashion-mnist-test", images, None, tmp_path)
    assert (root / "FashionMNIST" / "raw" / "train-images-idx3-ubyte").is_file()
    result = subprocess.run([sys.executable, str(HERE / name), "--data_root", str(root), "--dataset", "fashion-mnist",
                             "--n_steps", "5", "--sample_interval", "2", *flags], cwd=tmp_path, capture_output=True,
                            text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-2000:]
    batches = [line for line in result.stdout.splitlines() if line.startswith("[Epoch 0/200] [Batch ")]
    assert len(batches) == 5 and batches[-1].startswith("[Epoch 0/200] [Batch 4/8] [D loss: ")
    assert sorted(p.name for p in (tmp_path / "images").iterdir()) == ["0.png", "2.png", "4.png"]


@pytest.mark.slow
def test_whole_process_mode_runs_the_script_and_ganbench_run_as_processes(cli):
    result = cli("bench", "--whole-process", "-m", "mlp_gan", "--dataset", "fashion-mnist-test", "--steps", "2",
                 "--warmup", "1", "--process-steps", "12", "--json", env=ONE_THREAD, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout)
    (engine,) = summary["results"]
    (whole,) = summary["whole_process"]
    assert whole["workload"] == "mlp_gan" and whole["script"] == "gan_script.py"
    assert (whole["short_steps"], whole["long_steps"]) == (2, 12)
    assert all(len(pair) == 2 and 0 < pair[0] and 0 < pair[1] for side in ("script", "ganbench")
               for pair in whole["process_seconds"][side])
    assert len(whole["first_step_s"]) == 2 and all(0 < t < max(whole["process_seconds"]["ganbench"][0])
                                                   for t in whole["first_step_s"])
    assert whole["engine_images_per_s"] == pytest.approx(engine["ganbench_median"], rel=0.01)
    assert "outside_steps_share" in whole
    # With 2 and 12 steps a changing load can make the long process the quicker one: that repeat measures
    # nothing (nan, null in the JSON); the format and the timings of every process are checked all the same.
    number = r"(?:-?[\d,.]+|nan)"
    line = re.search(rf"^mlp_gan whole process: gan_script.py {number} images/s, ganbench run {number} images/s, "
                     rf"ratio {number}x; engine ratio [\d.]+x; first step [\d.]+ s after launch; outside the steps "
                     rf"{number} % of the run$", result.stderr, re.M)
    assert line, result.stderr[-2000:]


def test_whole_process_mode_refuses_a_workload_without_a_script(cli):
    result = cli("bench", "--whole-process", "-m", "dcgan-32")
    assert result.returncode == 2
    assert "dcgan-32 has no standalone script to run as a process; --whole-process runs mlp_gan, aae." \
        in result.stderr


@pytest.mark.slow
def test_a_repeat_whose_long_process_was_not_slower_measures_nothing():
    """Under a load that changes between processes the long run can finish first: that repeat is left out."""
    from workbench.bench.whole_process import ProcessTiming, WholeProcessResult, summary_line, to_dict
    from workbench.host.workloads import ClassicScript, Workload

    script = ClassicScript(Path("gan_script.py"), lambda *a: [], lambda *a: Path())
    result = WholeProcessResult(Workload("w", "m", "ref", object, lambda data: None, whole_process=script),
                                64, "d", 50, 300)
    for ganbench_long in (11.0, 16.0):  # 12 s for 50 steps, then 11 s (nothing measured) or 16 s for 300
        result.script.append((ProcessTiming("script", 50, 10.0), ProcessTiming("script", 300, 20.0)))
        result.ganbench.append((ProcessTiming("ganbench", 50, 12.0, 3.0),
                                ProcessTiming("ganbench", 300, ganbench_long, 3.2)))
    summary = to_dict(result, engine_rate=5000.0)
    assert summary["ganbench_images_per_s"] == [None, 4000.0] and summary["ratio"] == 2.5
    assert summary["outside_steps_share"] == 0.2 and summary["first_step_median_s"] == 3.1
    assert "ratio 2.50x; engine ratio 2.00x; first step 3.10 s after launch; outside the steps 20.0 %" in \
        summary_line(result, 2.0, 5000.0)


@pytest.mark.slow
def test_sweep_mode_times_trials_under_the_driver_one_and_two_at_a_time_and_by_hand(cli):
    result = cli("bench", "--sweep", "--process-steps", "40", "--set", "log_every=10", "--json", timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout)
    assert summary["steps"] == 40 and summary["repeats"] == 1 and summary["cpus"] == len(os.sched_getaffinity(0))
    runs = {side: len(summary["sides"][side]["images_per_s"][0]) for side in summary["sides"]}
    assert runs == {"alone": 1, "parallel-1": 2, "parallel-2": 2, "by-hand": 2}
    assert all(rate > 0 for side in summary["sides"].values() for rates in side["images_per_s"] for rate in rates)
    alone, trials = summary["sides"]["alone"], summary["sides"]["parallel-1"]
    assert summary["driver_rate_ratio"] == pytest.approx(trials["images_per_s"][0][0] / alone["images_per_s"][0][0],
                                                         abs=0.002)
    assert re.search(r"repeat 1/1: 2 trials, --parallel 2 +[\d.]+ s wall, training at [\d,]+, [\d,]+ images/s",
                     result.stderr)


def test_sweep_mode_paces_two_trials_against_one_at_a_time_pair_by_pair():
    from workbench.bench.sweep_cost import Timing, lines, summarize

    measured = [{"alone": Timing("alone", 10.0, [1000.0]), "parallel-1": Timing("parallel-1", 40.0, [990.0, 1010.0]),
                 "parallel-2": Timing("parallel-2", 32.0, [600.0, 640.0]),
                 "by-hand": Timing("by-hand", 50.0, [400.0, 410.0])},
                {"alone": Timing("alone", 20.0, [500.0]), "parallel-1": Timing("parallel-1", 80.0, [500.0, 500.0]),
                 "parallel-2": Timing("parallel-2", 80.0, [250.0, 250.0]),
                 "by-hand": Timing("by-hand", 80.0, [200.0, 200.0])}]
    summary = summarize(measured, cpus=2, steps=1500)
    assert summary["driver_rate_ratios"] == [0.99, 1.0] and summary["driver_rate_ratio"] == 0.995
    assert summary["parallel-2_speedup"] == pytest.approx((1.25 + 1.0) / 2)  # each repeat against its own
    assert summary["by-hand_speedup"] == pytest.approx((0.8 + 1.0) / 2)
    printed = "\n".join(lines(summary))
    assert "two at a time (--parallel 2, 1 thread each)" in printed and "1.12x" in printed
    assert "ratio 0.995 (median of 2)" in printed
