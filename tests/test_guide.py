"""The plugin author's guide, docs/plugins.md: it documents every hook and contract, and its plugin works.

The quick start's files are taken from the guide's code blocks as they stand,
installed with pip into a throwaway environment, listed, trained headless and
tested with the test kit, so the guide alone is enough to write a plugin.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import re
from pathlib import Path

import numpy
import pytest

from workbench import testing
from workbench.base.params import HyperParam
from workbench.host import hookspecs
from workbench.host.registry import DataRequest, DatasetSpec, ImageData, LossSpec, ModelSpec
from workbench.modeling.model import AdversarialLoss, GanModel
from workbench.testing import scratch_env

GUIDE_PATH = Path(__file__).resolve().parent.parent / "docs" / "plugins.md"
GUIDE = GUIDE_PATH.read_text(encoding="utf-8")
FILE_BLOCK = re.compile(r"<!-- file: (?P<path>[^ ]+) -->\n```(?P<lang>\w+)\n(?P<body>.*?)^```",
                        re.DOTALL | re.MULTILINE)
HOOKS = sorted(name for name in dir(hookspecs) if hasattr(getattr(hookspecs, name), "ganbench_spec"))


def sections() -> dict[str, str]:
    """Each heading line of the guide and the text under it, up to the next heading."""
    parts = re.split(r"^(#{1,6} .*)$", GUIDE, flags=re.MULTILINE)
    return {parts[i]: parts[i + 1] for i in range(1, len(parts) - 1, 2)}


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_has_a_section_naming_its_parameters(hook):
    found = {heading: text for heading, text in sections().items() if hook in heading}
    assert found, f"docs/plugins.md has no heading naming the hook {hook}"
    heading, text = next(iter(found.items()))
    for parameter in inspect.signature(getattr(hookspecs, hook)).parameters:
        assert parameter in heading + text, f"the section on {hook} does not mention its parameter {parameter}"


def test_the_hooks_are_read_from_the_module_itself():
    assert {"ganbench_register_models", "ganbench_register_datasets", "ganbench_register_losses",
            "ganbench_run_start", "ganbench_metrics", "ganbench_run_end"} <= set(HOOKS)
    assert all(getattr(hookspecs, hook).__doc__ for hook in HOOKS)


@pytest.mark.parametrize("cls", [ModelSpec, DatasetSpec, LossSpec, DataRequest, ImageData, HyperParam],
                         ids=lambda c: c.__name__)
def test_every_field_of_the_objects_a_plugin_registers_is_documented(cls):
    missing = [f.name for f in dataclasses.fields(cls) if f"`{f.name}`" not in GUIDE]
    assert not missing, f"docs/plugins.md does not mention {cls.__name__}'s {', '.join(missing)}"


@pytest.mark.parametrize("cls", [GanModel, AdversarialLoss], ids=lambda c: c.__name__)
def test_every_method_a_plugin_implements_or_calls_is_documented(cls):
    names = [n for n, v in vars(cls).items() if not n.startswith("_") and callable(v)]
    names += [n for n in ("networks", "optimizers", "latent_dim", "channels_last") if cls is GanModel]
    missing = [n for n in names if f"`{n}" not in GUIDE]
    assert not missing, f"docs/plugins.md does not mention {cls.__name__}.{', '.join(missing)}"


def test_the_test_kit_is_documented():
    for name in ("check_model_plugin", "check_loss_plugin", "check_dataset_plugin", "scratch_env"):
        assert f"`{name}(" in GUIDE or f"`workbench.api.{name}(" in GUIDE, name
        assert getattr(testing, name).__doc__


def test_every_python_block_compiles():
    blocks = re.findall(r"^```python\n(.*?)^```", GUIDE, re.DOTALL | re.MULTILINE)
    assert len(blocks) >= 5
    for number, block in enumerate(blocks):
        compile(block, f"docs/plugins.md python block {number + 1}", "exec")


# -- the quick start, built from the guide's own blocks ----------------------------------
def guide_files() -> dict[str, str]:
    return {m["path"]: m["body"] for m in FILE_BLOCK.finditer(GUIDE)}


@pytest.fixture(scope="module")
def hello(tmp_path_factory):
    root = tmp_path_factory.mktemp("guide")
    for name, body in guide_files().items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(body, encoding="utf-8")
    env = scratch_env(root / "venv")
    env.install(root / "ganbench-hello")
    return env, root / "ganbench-hello"


def test_the_quick_start_is_a_whole_project():
    assert set(guide_files()) == {"ganbench-hello/pyproject.toml", "ganbench-hello/ganbench_hello/__init__.py",
                                  "ganbench-hello/ganbench_hello/model.py", "ganbench-hello/ganbench_hello/dataset.py",
                                  "ganbench-hello/ganbench_hello/loss.py", "ganbench-hello/tests/test_hello.py"}


@pytest.mark.slow
def test_the_guide_s_plugin_shows_up_in_ganbench_plugins(hello, tmp_path):
    env, _ = hello
    done = env.ganbench("plugins", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    mine = {p["name"]: (p["error"], p["registered"]) for p in document["plugins"] if p["dist"] == "ganbench-hello"}
    assert mine == {"hello_model": (None, {"models": ["hello_gan"]}),
                    "hello_dataset": (None, {"datasets": ["npy-images"]}),
                    "hello_loss": (None, {"losses": ["smooth-bce"]})}
    assert [p["name"] for p in document["models"]["hello_gan"]["hyperparams"]][-3:] == \
        ["latent_dim", "hidden", "image_size"]
    assert document["errors"] == []


@pytest.mark.slow
def test_the_guide_s_plugin_trains_headless(hello, tmp_path, fashion_images):
    env, _ = hello
    numpy.save(tmp_path / "images.npy", fashion_images[:64].numpy())
    done = env.ganbench("run", "--plugin", "hello_gan", "--loss", "smooth-bce", "--dataset", "npy-images",
                        "--data-root", str(tmp_path), "--set", "hidden=16", "--batch-size", "8", "--steps", "3",
                        "--name", "hello", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "completed: Completed 3 steps." in done.stdout
    assert (tmp_path / "runs" / "hello" / "checkpoints" / "latest.safetensors").is_file()


@pytest.mark.slow
def test_the_guide_s_plugin_passes_its_own_tests(hello):
    env, project = hello
    done = env.run("-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "ignore::DeprecationWarning", "tests",
                   cwd=project)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 passed" in done.stdout
