"""The headless CLI in a real subprocess: run, sample, runs, plugins, and its error sentences."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
from helpers import install_plugin
from PIL import Image

TINY = ["--set", "log_every=4", "--set", "sample_every=0", "--batch-size", "32"]


def assert_one_sentence_error(result, *fragments):
    assert result.returncode != 0
    assert "Traceback" not in result.stderr + result.stdout
    message = result.stderr.strip().splitlines()[-1]
    assert message.startswith("ganbench: error: ")
    for fragment in fragments:
        assert fragment in message, message


def test_run_then_sample_then_list(cli, tiny_mnist, tmp_path):
    result = cli("run", "--plugin", "mlp_gan", "--dataset", "mnist", "--data-root", str(tiny_mnist),
                 "--steps", "12", "--name", "first", *TINY)
    assert result.returncode == 0, result.stderr
    # not a terminal: plain timestamped lines, not one line per batch
    lines = result.stdout.splitlines()
    assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d run first: mlp_gan on mnist \(512 images\)", lines[0])
    assert any("step 12/12" in line and "D loss" in line and "img/s" in line for line in lines)
    assert len(lines) < 12
    run_dir = tmp_path / "runs" / "first"
    assert (run_dir / "checkpoints" / "latest.safetensors").is_file()

    sample = cli("sample", str(run_dir), "-n", "16", "-o", "grid.png", "--seed", "1", "--device", "cpu")
    assert sample.returncode == 0, sample.stderr
    with Image.open(tmp_path / "grid.png") as grid:
        assert grid.size == (4 * 30 + 2, 4 * 30 + 2)  # 4x4 images of 28 px with 2 px padding

    listing = cli("runs", "--json")
    rows = json.loads(listing.stdout)
    assert rows[0]["name"] == "first" and rows[0]["status"] == "completed" and rows[0]["step"] == 12
    assert cli("runs").returncode == 0


@pytest.mark.parametrize("model, extra", [("dcgan", ["--set", "ngf=8", "--set", "ndf=8"]), ("aae", [])])
def test_other_core_models_run_headless_and_sample(cli, tiny_mnist, tmp_path, model, extra):
    result = cli("run", "-p", model, "--dataset", "mnist", "--data-root", str(tiny_mnist), "--steps", "6",
                 "--name", model, *TINY, *extra)
    assert result.returncode == 0, result.stderr
    checkpoint = tmp_path / "runs" / model / "checkpoints" / "latest.safetensors"
    assert cli("sample", str(checkpoint), "-n", "4", "-o", f"{model}.png").returncode == 0
    with Image.open(tmp_path / f"{model}.png") as grid:
        assert grid.size == (2 * 34 + 2, 2 * 34 + 2)  # the models draw 32 px images


def test_resume_continues_the_same_run(cli, tiny_mnist, tmp_path):
    common = ["--dataset", "mnist", "--data-root", str(tiny_mnist), *TINY]
    assert cli("run", "-p", "mlp_gan", "--steps", "6", "--name", "r", *common).returncode == 0
    resumed = cli("run", "--resume", str(tmp_path / "runs" / "r"), "--steps", "10")
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed from" in resumed.stdout
    state = json.loads((tmp_path / "runs" / "r" / "state.json").read_text())
    assert state["status"] == "completed" and state["step"] == 10


@pytest.mark.parametrize("args, fragments", [
    (["run", "-p", "dcgna"], ['Unknown model plugin "dcgna"', 'Did you mean "dcgan"?']),
    (["run", "-p", "dcgan", "--dataset", "mnsit"], ['Unknown dataset "mnsit"', '"mnist"']),
    (["run", "-p", "dcgan", "--loss", "hinj"], ['Unknown loss "hinj"', '"hinge"']),
    (["run", "-p", "dcgan", "--set", "ngff=8"], ['"ngff" is not a setting of dcgan', '"ngf"']),
    (["run", "-p", "dcgan", "--set", "image_size=48"], ["image_size must be one of 32, 64"]),
    (["run", "-p", "mlp_gan", "--lr", "-1"], ["lr must be at least"]),
    (["run", "-p", "mlp_gan", "--batch-size", "0"], ["batch_size must be at least 2"]),
    (["run", "-p", "mlp_gan", "--set", "latent_dim=ten"], ["latent_dim must be a whole number"]),
    (["run", "-p", "mlp_gan", "--set", "lr"], ["--set needs key=value"]),
    (["run", "-p", "mlp_gan", "--name", "../escape"], ["no path separators"]),
])
def test_bad_input_is_one_sentence(cli_here, args, fragments):
    assert_one_sentence_error(cli_here(*args), *fragments)


def test_missing_data_is_one_sentence(cli_here, tmp_path):
    result = cli_here("run", "-p", "mlp_gan", "--dataset", "mnist", "--data-root", str(tmp_path / "none"))
    assert_one_sentence_error(result, "MNIST was not found", "--download")
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_corrupt_and_mismatched_checkpoints_are_one_sentence(cli, tiny_mnist, tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all}")
    assert_one_sentence_error(cli("sample", str(bad)), "header is not JSON")
    assert_one_sentence_error(cli("sample", str(tmp_path / "nope.safetensors")), "No checkpoint at")
    # a real checkpoint, truncated
    assert cli("run", "-p", "mlp_gan", "--dataset", "mnist", "--data-root", str(tiny_mnist), "--steps", "2",
               "--name", "t", *TINY).returncode == 0
    good = tmp_path / "runs" / "t" / "checkpoints" / "latest.safetensors"
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(good.read_bytes()[:-4096])
    assert_one_sentence_error(cli("sample", str(cut)), "corrupt or truncated")


def test_help_is_instant_and_headless_never_imports_textual():
    code = ("import sys, workbench.cli.main, workbench.engine.run, workbench.cli.console;"
            "from workbench.cli.commands import run, plugins, sample, runs, sweep, compare;"
            "import workbench.sweep.driver, workbench.sweep.compare, workbench.sweep.figures;"
            "print('textual' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    code = "import sys, workbench.cli.main; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", "ganbench --help must not import torch"


def test_plugins_lists_core_plugins_from_entry_points(cli_here):
    result = cli_here("plugins", "--json")
    data = json.loads(result.stdout)
    assert {"mlp_gan", "dcgan", "aae"} <= set(data["models"])
    assert {"mnist", "fashion-mnist", "fashion-mnist-test", "celeba", "folder"} <= set(data["datasets"])
    assert {"bce", "lsgan", "hinge", "wgan-gp"} <= set(data["losses"])
    assert data["models"]["dcgan"]["dist"] == "ganbench"
    image_size = next(p for p in data["models"]["dcgan"]["hyperparams"] if p["name"] == "image_size")
    assert image_size["choices"] == [32, 64]


METRIC_PLUGIN = """
from workbench import hookimpl
from workbench.host.registry import MetricSpec

def _broken():
    raise RuntimeError("no moon tonight")

@hookimpl
def ganbench_register_metrics(register):
    register(MetricSpec("moon_score", "how lunar the samples look", lambda ctx: 1.0, lower_is_better=False,
                        default=False, available=lambda: "it needs the moon."))
    register(MetricSpec("eclipse", "a metric whose availability check fails", lambda ctx: 1.0,
                        available=_broken))
"""


def test_plugins_lists_the_metrics_with_direction_default_and_availability(cli, tmp_path):
    site = install_plugin(tmp_path / "site", "moon_metrics", METRIC_PLUGIN)
    env = {"PYTHONPATH": str(site)}
    table = cli("plugins", env=env)
    assert table.returncode == 0, table.stderr
    rows = {line.split("│")[1].strip(): [cell.strip() for cell in line.split("│")[2:5]]
            for line in table.stdout[table.stdout.index("Metrics"):].splitlines()
            if line.startswith("│") and line.split("│")[1].strip()}
    assert rows["fd"] == ["lower", "yes", "yes"] and rows["recall"] == ["higher", "yes", "yes"]
    assert rows["moon_score"] == ["higher", "no", "no: it needs the moon."]
    assert rows["eclipse"][:2] == ["lower", "yes"] and rows["eclipse"][2].startswith("no: its available()")
    assert rows["fid"][1] == "no" and rows["kid"][1] == "no"  # named only
    data = json.loads(cli("plugins", "--json", env=env).stdout)["metrics"]
    assert data["fd"]["lower_is_better"] is True and data["fd"]["default"] is True and data["fd"]["unavailable"] is None
    assert data["moon_score"] == {"description": "how lunar the samples look", "plugin": "moon_metrics",
                                  "dist": "moon-metrics", "lower_is_better": False, "default": False,
                                  "unavailable": "it needs the moon."}
    assert data["eclipse"]["unavailable"] == "its available() raised RuntimeError: no moon tonight."


@pytest.mark.slow
def test_config_file_repeats_a_run_and_trains_a_prepared_folder(cli, tiny_mnist, tmp_path):
    first = cli("run", "-p", "mlp_gan", "--dataset", "mnist", "--data-root", str(tiny_mnist), "--steps", "4",
                "--lr", "0.001", "--name", "first", *TINY)
    assert first.returncode == 0, first.stderr
    original = tmp_path / "runs" / "first" / "config.json"

    # another run's config.json is a template: a new folder, its settings, the flags beside it on top
    again = cli("run", "--config", str(original), "--steps", "6", "--set", "latent_dim=50")
    assert again.returncode == 0, again.stderr
    repeated = [p for p in (tmp_path / "runs").iterdir() if p.name != "first"]
    assert len(repeated) == 1
    config = json.loads((repeated[0] / "config.json").read_text())
    assert config["hyperparams"]["lr"] == 0.001 and config["hyperparams"]["latent_dim"] == 50
    assert config["steps"] == 6 and config["data_root"] == str(tiny_mnist)
    assert json.loads((tmp_path / "runs" / "first" / "config.json").read_text())["steps"] == 4

    # a folder a launcher prepared (config.json, nothing else yet) trains in place
    prepared = tmp_path / "runs" / "prepared"
    prepared.mkdir()
    (prepared / "config.json").write_text(json.dumps({**json.loads(original.read_text()), "name": "prepared",
                                                      "tags": {"sweep": "s1", "trial": 3}}))
    inside = cli("run", "--config", str(prepared / "config.json"))
    assert inside.returncode == 0, inside.stderr
    assert (prepared / "checkpoints" / "latest.safetensors").is_file()
    assert json.loads((prepared / "state.json").read_text())["status"] == "completed"
    assert json.loads((prepared / "config.json").read_text())["tags"] == {"sweep": "s1", "trial": 3}
    assert len(list((tmp_path / "runs").iterdir())) == 3

    # once started, its config.json is a template like any other: a new run, the first left as it was
    before = (prepared / "events.jsonl").read_bytes()
    assert cli("run", "--config", str(prepared / "config.json"), "--steps", "2").returncode == 0
    assert len(list((tmp_path / "runs").iterdir())) == 4 and (prepared / "events.jsonl").read_bytes() == before
    assert_one_sentence_error(cli("run", "--config", str(original), "-p", "dcgan"), "--plugin")
    assert_one_sentence_error(cli("run", "--config", str(tmp_path / "missing.json")), "does not exist")


def test_one_runs_folder_for_the_workbench_and_every_command(cli, tiny_mnist, tmp_path):
    """$GANBENCH_RUNS_DIR, or ``ganbench --runs-dir`` before the command, is where runs go and are listed:
    a headless run lands where the workbench looks."""
    data = ("--dataset", "mnist", "--data-root", str(tiny_mnist), "--steps", "2", *TINY)
    env = {"GANBENCH_RUNS_DIR": str(tmp_path / "shared")}
    assert cli("run", "--plugin", "mlp_gan", "--name", "by-env", *data, env=env).returncode == 0
    assert (tmp_path / "shared" / "by-env" / "checkpoints" / "latest.safetensors").is_file()
    assert cli("--runs-dir", "flagged", "run", "--plugin", "mlp_gan", "--name", "by-flag", *data).returncode == 0
    assert (tmp_path / "flagged" / "by-flag" / "state.json").is_file()
    assert not (tmp_path / "runs").exists()
    listed = cli("runs", "--json", env=env)
    assert [row["name"] for row in json.loads(listed.stdout)] == ["by-env"]
    listed = cli("--runs-dir", "flagged", "runs", "--json", env=env)  # the flag wins over the variable
    assert [row["name"] for row in json.loads(listed.stdout)] == ["by-flag"]
