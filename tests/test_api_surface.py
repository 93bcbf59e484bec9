"""One import surface for plugin authors (``workbench.api``), and the 0.1 paths still answered for this release."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import workbench.api as api
from workbench._moved import MOVED

ROOT = Path(__file__).resolve().parents[1]
# the core plugins a third party could have written: quality and classic are the core's own metrics and benchmark
AUTHOR_PLUGINS = ["aae", "acgan", "celeba", "cgan", "dcgan", "losses", "mlp_gan", "mnist", "r3gan", "tensorboard"]


def workbench_imports(source: str) -> set[str]:
    """The ``workbench...`` modules a piece of Python imports (``from X import`` and ``import X``)."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "workbench":
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "workbench"}
    return found


def test_every_name_of_the_surface_resolves():
    for name in api.__all__:
        assert getattr(api, name) is not None, name


def test_the_guides_code_imports_only_from_the_surface():
    for guide in ("docs/plugins.md", "docs/models.md"):
        text = (ROOT / guide).read_text(encoding="utf-8")
        blocks = re.findall(r"```python\n(.*?)^```", text, re.DOTALL | re.MULTILINE)
        assert blocks or guide != "docs/plugins.md", guide
        for block in blocks:
            try:
                imported = workbench_imports(block)
            except SyntaxError:  # a fragment (a signature, an excerpt): its import lines still count
                imported = set(re.findall(r"^from (workbench[\w.]*) import", block, re.M))
            assert imported <= {"workbench.api"}, f"{guide} imports {sorted(imported - {'workbench.api'})}"


def test_the_core_plugins_an_author_could_write_import_only_the_surface():
    for name in AUTHOR_PLUGINS:
        imported = workbench_imports((ROOT / "plugins" / f"{name}.py").read_text(encoding="utf-8"))
        assert imported <= {"workbench.api"}, f"plugins/{name}.py imports {sorted(imported - {'workbench.api'})}"


def test_the_surface_does_not_load_the_engine_or_the_test_kit_until_asked():
    code = ("import sys, workbench.api as api; before = sorted(m for m in sys.modules if m.startswith("
            "('workbench.engine', 'workbench.testkit', 'workbench.quality'))); api.check_model_plugin; "
            "print(before, 'workbench.testkit' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["[]", "True"]


def test_every_old_path_is_the_moved_module_with_a_warning_naming_the_surface():
    code = """
import importlib, json, warnings
from workbench._moved import MOVED
out = {}
for old, new in MOVED.items():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        same = importlib.import_module(old) is importlib.import_module(new)
    out[old] = [same, [str(w.message) for w in caught if w.category is DeprecationWarning]]
print(json.dumps(out))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert set(result) == set(MOVED)
    for old, (same, warned) in result.items():
        assert same, f"{old} is not {MOVED[old]}"
        assert any(f"{old} moved to {MOVED[old]}; import from workbench.api" in w for w in warned), (old, warned)
