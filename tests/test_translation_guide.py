"""The image-to-image plugin of docs/models.md ("Writing an image-to-image plugin"), taken from the guide's own
block as it stands: it registers, trains on a real pix2pix folder through the engine, draws labelled grids
from its fixed held-out inputs, and translates a folder from its checkpoint."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest

from translation_folders import pix2pix_folder
from workbench.engine.inference import load_model
from workbench.engine.run import prepare_run
from workbench.engine.translation import translate_files
from workbench.host.configure import build_config
from workbench.host.manager import load_plugins

pytestmark = pytest.mark.usefixtures("one_thread")
GUIDE = (Path(__file__).resolve().parent.parent / "docs" / "models.md").read_text(encoding="utf-8")
BLOCK = re.compile(r"<!-- i2i file: (?P<path>[^ ]+) -->\n```python\n(?P<body>.*?)^```", re.DOTALL | re.MULTILINE)


def guide_plugin(folder: Path):
    blocks = {m["path"]: m["body"] for m in BLOCK.finditer(GUIDE)}
    assert list(blocks) == ["painter.py"]
    path = folder / "painter.py"
    path.write_text(blocks["painter.py"], encoding="utf-8")
    spec = importlib.util.spec_from_file_location("guide_painter", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_guide_s_image_to_image_plugin_trains_on_pairs_and_translates(tmp_path, fashion_images):
    plugins = load_plugins(extra_modules=[guide_plugin(tmp_path)])
    assert "painter" in plugins.registry.models
    data = pix2pix_folder(tmp_path / "pairs", fashion_images, train=16, test=4)
    config = build_config(plugins.registry, "painter", sets=["sample_count=4", "width=4"], steps=4,
                          data_root=str(data), runs_dir=str(tmp_path / "runs"), name="painter", device="cpu")
    run = prepare_run(config, plugins)
    assert run.train() == "completed"
    lines = [json.loads(line) for line in (run.dir.events).read_text().splitlines()]
    start = next(e for e in lines if e["type"] == "run_start")
    assert start["grid_rows"] == ["input", "output", "target"] and "l1" in start["metric_keys"]
    assert [e["file"] for e in lines if e["type"] == "sample"] == ["samples/step-00000004.png"]
    model, checkpoint = load_model(run.dir.path, plugins, "cpu")
    written = translate_files(model, checkpoint.meta["image_shape"], data / "test", tmp_path / "out")
    assert len(written) == 4 and all(p.suffix == ".png" for p in written)
