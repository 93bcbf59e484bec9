"""The guide's conditional example (docs/plugins.md, "Conditional models"): written from the guide's own blocks,
installed into a throwaway environment, it trains on real labels and passes the test kit's labels path."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from workbench.testing import scratch_env

pytestmark = pytest.mark.slow  # end-to-end processes: `pytest -m slow` (CI runs it)

GUIDE = (Path(__file__).resolve().parent.parent / "docs" / "plugins.md").read_text(encoding="utf-8")
COND_BLOCK = re.compile(r"<!-- conditional file: (?P<path>[^ ]+) -->\n```(?P<lang>\w+)\n(?P<body>.*?)^```",
                        re.DOTALL | re.MULTILINE)


@pytest.fixture(scope="module")
def cond(tmp_path_factory):
    root = tmp_path_factory.mktemp("cond-guide")
    files = {m["path"]: m["body"] for m in COND_BLOCK.finditer(GUIDE)}
    assert set(files) == {"ganbench-cond/pyproject.toml", "ganbench-cond/ganbench_cond/__init__.py",
                          "ganbench-cond/ganbench_cond/model.py", "ganbench-cond/tests/test_cond.py"}
    for name, body in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(body, encoding="utf-8")
    env = scratch_env(root / "venv")
    env.install(root / "ganbench-cond")
    return env, root / "ganbench-cond"


def test_the_guide_s_conditional_plugin_trains_on_labels_and_draws_a_class(cond, tmp_path):
    env, _ = cond
    done = env.ganbench("run", "--plugin", "hello_cgan", "--set", "hidden=16", "--batch-size", "8", "--steps", "3",
                        "--set", "sample_count=4", "--name", "cond", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "completed: Completed 3 steps." in done.stdout
    start = json.loads((tmp_path / "runs" / "cond" / "events.jsonl").read_text().splitlines()[0])
    assert start["conditional"] is True and start["classes"][7] == "Sneaker"
    done = env.ganbench("sample", "runs/cond", "--class", "Sneaker", "-n", "4", cwd=tmp_path)
    assert done.returncode == 0 and "of class Sneaker" in done.stdout, done.stderr


def test_the_guide_s_conditional_plugin_passes_its_own_kit_test(cond):
    env, project = cond
    done = env.run("-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "ignore::DeprecationWarning", "tests",
                   cwd=project)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout
