"""Installed plugins, as a user has them: the example distribution and a deliberately broken one.

Each is pip-installed (editable, offline) into a throwaway environment that sees
this one's packages, so the environment running the tests never changes and a
second run starts from scratch.
"""

from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path

import pytest
import torch

from workbench.engine.checkpoint import read_metadata
from workbench.rundir.events import iter_events
from workbench.testing import scratch_env, shape_images

pytestmark = pytest.mark.slow  # end-to-end processes: `pytest -m slow` (CI runs it)

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "ganbench-example-plugin"
WIDE = {"COLUMNS": "400"}


def copy_project(source: Path, target: Path) -> Path:
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", ".pytest_cache"))
    return target


def write_project(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return root


def cifar_files(folder: Path, per_file: int = 10) -> Path:
    """The CIFAR-10 binary version's six files, each ``per_file`` records of a label byte and 3,072 pixel bytes."""
    names = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]
    target = folder / "cifar-10-batches-bin"
    target.mkdir(parents=True)
    for seed, name in enumerate(names):
        images, labels = shape_images(per_file, 3, 32, seed=seed)
        records = torch.cat([labels.to(torch.uint8).view(-1, 1), images.flatten(1)], dim=1)
        (target / name).write_bytes(records.numpy().tobytes())
    return folder


# -- the example plugin ------------------------------------------------------------
@pytest.fixture(scope="module")
def example(tmp_path_factory):
    root = tmp_path_factory.mktemp("example")
    project = copy_project(EXAMPLE, root / "ganbench-example-plugin")
    env = scratch_env(root / "venv")
    env.install(project)
    return env, project


def test_the_example_plugin_is_listed_with_its_distribution(example, tmp_path):
    env, _ = example
    done = env.ganbench("plugins", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    mine = {p["name"]: p for p in document["plugins"] if p["dist"] == "ganbench-example-plugin"}
    assert {name: (p["version"], p["error"], p["registered"]) for name, p in mine.items()} == {
        "example_wgan": ("0.1.0", None, {"models": ["wgan"]}),
        "example_cifar10": ("0.1.0", None, {"datasets": ["cifar10"]}),
        "example_losses": ("0.1.0", None, {"losses": ["wasserstein", "r1"]}),
    }
    wgan = document["models"]["wgan"]
    assert (wgan["plugin"], wgan["dist"], wgan["loss"]) == ("example_wgan", "ganbench-example-plugin", "wasserstein")
    assert {p["name"]: p["default"] for p in wgan["hyperparams"]}["n_critic"] == 5
    assert {"mlp_gan", "dcgan", "aae"} <= set(document["models"])
    assert document["errors"] == []


def test_the_example_trains_headless_on_cifar10_files(example, tmp_path):
    env, _ = example
    data = cifar_files(tmp_path / "cifar")
    done = env.ganbench("run", "--plugin", "wgan", "--dataset", "cifar10", "--data-root", str(data), "--steps", "3",
                        "--batch-size", "8", "--set", "hidden=8", "--set", "image_size=32", "--set", "n_critic=2",
                        "--name", "wgan-cifar", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "completed: Completed 3 steps." in done.stdout
    meta = read_metadata(tmp_path / "runs" / "wgan-cifar" / "checkpoints" / "latest.safetensors")
    assert (meta["model"], meta["dataset"], meta["loss"], meta["image_shape"]) == \
        ("wgan", "cifar10", "wasserstein", [3, 32, 32])
    start = next(iter_events(tmp_path / "runs" / "wgan-cifar" / "events.jsonl"))
    assert start["dataset_size"] == 50 and start["dataset_source"].endswith("cifar-10-batches-bin")


def test_the_example_s_own_tests_pass_with_the_test_kit(example):
    env, project = example
    done = env.run("-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "ignore::DeprecationWarning", cwd=project)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "4 passed" in done.stdout


PILOT = """
import asyncio, json, sys
from textual.widgets import Select
from workbench.tui.app import make_app
from workbench.tui.screens.new_run import NewRunScreen


async def main(runs):
    app = make_app(runs, reattach=False)  # loads the plugins itself, as a bare `ganbench` does
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.press("n")
        for _ in range(1200):
            if isinstance(app.screen, NewRunScreen):
                break
            await pilot.pause(0.05)
        form = app.screen
        form.query_one("#pick-model", Select).value = "wgan"  # refused unless the picker offers it
        for _ in range(200):
            if form.query("#param-n_critic") and form.query_one("#pick-loss", Select).value == "wasserstein":
                break
            await pilot.pause(0.05)
        picked = {kind: form.query_one(f"#pick-{kind}", Select).value for kind in ("model", "dataset", "loss")}
        print(json.dumps(picked | {"n_critic": form.query_one("#param-n_critic").value,
                                   "help": str(form.query_one("#help-model").render())}))


asyncio.run(main(sys.argv[1]))
"""


def test_the_example_appears_in_the_workbench_pickers(example, tmp_path):
    env, _ = example
    done = env.run("-c", PILOT, str(tmp_path / "runs"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    shown = json.loads(done.stdout.strip().splitlines()[-1])
    assert shown["help"].endswith("[example_wgan (ganbench-example-plugin)]")
    assert (shown["model"], shown["dataset"], shown["loss"], shown["n_critic"]) == \
        ("wgan", "fashion-mnist-test", "wasserstein", "5")


# -- a broken plugin -----------------------------------------------------------------
BROKEN = {
    "pyproject.toml": """
        [build-system]
        requires = ["setuptools>=69"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "ganbench-broken-plugin"
        version = "6.6.6"

        [project.entry-points.ganbench]
        broken_import = "ganbench_broken.import_error"
        broken_exit = "ganbench_broken.exits"
        broken_hook = "ganbench_broken.raising_hook"
        broken_registration = "ganbench_broken.bad_registration"
        broken_observer = "ganbench_broken.raising_observer"
        mnist = "ganbench_broken.clash"

        [tool.setuptools]
        packages = ["ganbench_broken"]
    """,
    "ganbench_broken/__init__.py": "",
    "ganbench_broken/import_error.py": "import ganbench_no_such_module\n",
    "ganbench_broken/exits.py": "raise SystemExit('this plugin quits the interpreter')\n",
    "ganbench_broken/raising_hook.py": """
        from workbench import hookimpl

        @hookimpl
        def ganbench_register_models(register):
            raise RuntimeError("the model server is down")
    """,
    "ganbench_broken/bad_registration.py": """
        import torch
        from torch import nn

        from workbench import hookimpl
        from plugins.losses import BCELoss
        from workbench.base.params import HyperParam, training_params
        from workbench.host.registry import LossSpec, ModelSpec
        from workbench.modeling.model import TwoNetworkGAN

        def build_flat(hp, shape):
            G = nn.Sequential(nn.Linear(hp["latent_dim"], 784), nn.Tanh())  # forgets to reshape
            D = nn.Sequential(nn.Flatten(), nn.Linear(784, 1))
            return TwoNetworkGAN(G, D, hp, latent_dim=hp["latent_dim"])

        PARAMS = training_params(8, 2e-4, 1) + (HyperParam("latent_dim", "int", 4),)

        @hookimpl
        def ganbench_register_models(register):
            register(ModelSpec("no_build", "a model without build", None, PARAMS))
            register(ModelSpec("flat_gan", "a generator of the wrong shape", build_flat, PARAMS))

        @hookimpl
        def ganbench_register_datasets(register):
            register("cifar10")

        @hookimpl
        def ganbench_register_losses(register):
            register(LossSpec("bce", "a second bce", BCELoss))
    """,
    "ganbench_broken/raising_observer.py": """
        from workbench import hookimpl

        @hookimpl
        def ganbench_run_start(run):
            raise RuntimeError("the dashboard is unreachable")
    """,
    "ganbench_broken/clash.py": '"""Shares its entry-point name with a core plugin."""\n',
}
BROKEN_ERRORS = [
    "Plugin \"broken_exit\" (ganbench-broken-plugin): failed to load: SystemExit: this plugin quits the interpreter.",
    "Plugin \"broken_import\" (ganbench-broken-plugin): failed to load: ModuleNotFoundError: No module named "
    "'ganbench_no_such_module'.",
    'Plugin "mnist" is provided by both ganbench and ganbench-broken-plugin; keeping the one from ganbench.',
    'Plugin "broken_hook" (ganbench-broken-plugin): ganbench_register_models raised RuntimeError: the model server '
    "is down.",
    "Plugin \"broken_registration\" (ganbench-broken-plugin): registered an invalid ModelSpec 'no_build': its build "
    "is None, not a function; it is ignored.",
    'Plugin "broken_registration" (ganbench-broken-plugin): registered a str where a DatasetSpec belongs; it is '
    "ignored.",
    'Loss "bce" is registered by both ganbench (plugin losses) and ganbench-broken-plugin (plugin '
    "broken_registration); keeping the one from ganbench.",
]


@pytest.fixture(scope="module")
def broken(tmp_path_factory):
    root = tmp_path_factory.mktemp("broken")
    project = write_project(root / "ganbench-broken-plugin", BROKEN)
    env = scratch_env(root / "venv")
    env.install(project)
    return env


def test_broken_plugins_are_listed_with_their_errors(broken, tmp_path):
    done = broken.ganbench("plugins", cwd=tmp_path, env=WIDE)
    assert done.returncode == 0, done.stderr
    rows = {line.split("│")[1].strip(): line for line in done.stdout.splitlines() if line.count("│") == 5}
    for name in ("broken_import", "broken_exit", "broken_hook", "broken_registration"):
        assert rows[name].split("│")[4].strip() == "error (below)", rows[name]
    assert rows["mlp_gan"].split("│")[4].strip() == "ok"
    assert "observes: run_start" in rows["broken_observer"] and "6.6.6" in rows["broken_hook"]
    for error in BROKEN_ERRORS:
        assert f"error: {error}" in done.stdout


def test_broken_plugins_are_in_the_json_listing(broken, tmp_path):
    done = broken.ganbench("plugins", "--json", cwd=tmp_path)
    document = json.loads(done.stdout)
    assert all(error in document["errors"] for error in BROKEN_ERRORS)
    errors = {p["name"]: p["error"] for p in document["plugins"] if p["dist"] == "ganbench-broken-plugin"}
    assert errors["broken_import"] == "failed to load: ModuleNotFoundError: No module named 'ganbench_no_such_module'"
    assert errors["broken_observer"] is None and "mnist" not in errors
    assert document["losses"]["bce"]["dist"] == "ganbench"
    assert "flat_gan" in document["models"] and "no_build" not in document["models"]


def test_a_run_with_the_core_plugins_is_not_stopped_by_them(broken, tmp_path):
    done = broken.ganbench("run", "--plugin", "mlp_gan", "--steps", "2", "--batch-size", "8", "--name", "core",
                           cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "completed: Completed 2 steps." in done.stdout
    assert all(f"warning: {error}" in done.stderr for error in BROKEN_ERRORS)
    log = tmp_path / "runs" / "core" / "events.jsonl"
    warnings = [e["message"] for e in iter_events(log) if e["type"] == "warning"]
    assert ('Plugin "broken_observer" failed in ganbench_run_start: RuntimeError: the dashboard is unreachable'
            in warnings)


def test_a_model_breaking_its_contract_is_refused_in_one_sentence(broken, tmp_path):
    done = broken.ganbench("run", "--plugin", "flat_gan", "--steps", "1", cwd=tmp_path)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert done.stderr.splitlines()[-1] == (
        'ganbench: error: Model "flat_gan" (plugin broken_registration from ganbench-broken-plugin): generate() '
        "returned a float32 tensor of shape (8, 784) on cpu for noise of shape (8, 4); it must return "
        "floating-point images of shape (8, 1, 28, 28).")
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
