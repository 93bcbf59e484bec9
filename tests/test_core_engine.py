"""The engine: run directories, events, checkpoints, and exact resume on the CPU."""

from __future__ import annotations

import json
import shutil

import torch
from safetensors import safe_open

from workbench.engine.checkpoint import load_checkpoint
from workbench.engine.run import prepare_run
from workbench.host.configure import build_config
from workbench.rundir.events import read_events


def config_for(plugins, tmp_path, data_root, **kw):
    sets = ["batch_size=32", "sample_every=8", "checkpoint_every=8", "log_every=4", "log_seconds=3600"] + kw.pop("sets", [])
    return build_config(plugins.registry, kw.pop("model", "mlp_gan"), dataset="mnist", sets=sets,
                        data_root=str(data_root), runs_dir=str(tmp_path / "runs"), device="cpu", seed=3, **kw)


def test_run_leaves_a_complete_run_directory(plugins, tmp_path, tiny_mnist):
    run = prepare_run(config_for(plugins, tmp_path, tiny_mnist, steps=20), plugins)
    assert run.train() == "completed"
    root = run.dir.path
    config = json.loads((root / "config.json").read_text())
    assert config["model"] == "mlp_gan" and config["hyperparams"]["batch_size"] == 32
    events, _ = read_events(root / "events.jsonl")
    kinds = [e["type"] for e in events]
    assert kinds[0] == "run_start" and kinds[-1] == "run_end" and events[-1]["reason"] == "completed"
    metrics = [e for e in events if e["type"] == "metrics"]
    assert [m["step"] for m in metrics][:3] == [4, 8, 12]
    assert all({"d_loss", "g_loss", "d_real", "d_fake", "images_per_s"} <= set(m) for m in metrics)
    assert "epoch_end" in kinds
    assert sorted(p.name for p in (root / "samples").iterdir()) == ["step-00000008.png", "step-00000016.png",
                                                                    "step-00000020.png"]
    assert json.loads((root / "state.json").read_text())["status"] == "completed"
    # the latest checkpoint describes itself
    with safe_open(str(root / "checkpoints" / "latest.safetensors"), "pt") as handle:
        meta = json.loads(handle.metadata()["ganbench"])
        keys = set(handle.keys())
    assert meta["model"] == "mlp_gan" and meta["step"] == 20 and meta["image_shape"] == [1, 28, 28]
    assert meta["latent_dim"] == 100 and meta["ganbench_version"] and meta["hyperparams"]["lr"] == 2e-4
    assert {"rng/noise", "rng/torch", "fixed_noise"} <= keys
    assert any(k.startswith("opt/generator/") for k in keys) and any(k.startswith("net/discriminator/") for k in keys)


def test_keeps_a_bounded_number_of_checkpoints(plugins, tmp_path, tiny_mnist):
    config = config_for(plugins, tmp_path, tiny_mnist, steps=40, sets=["checkpoint_every=4", "keep_checkpoints=2"])
    run = prepare_run(config, plugins)
    run.train()
    names = sorted(p.name for p in run.dir.checkpoints.iterdir())
    assert names == ["latest.safetensors", "step-00000036.safetensors", "step-00000040.safetensors"]


def weights(path):
    return load_checkpoint(path).tensors


def test_resumed_run_reaches_the_same_weights(plugins, tmp_path, tiny_mnist):
    # 14 steps does not divide the 16 steps of an epoch: resume lands mid-epoch
    full = prepare_run(config_for(plugins, tmp_path, tiny_mnist, steps=28, name="full", model="dcgan",
                                  sets=["ngf=8", "ndf=8"]), plugins)
    full.train()
    half = prepare_run(config_for(plugins, tmp_path, tiny_mnist, steps=14, name="half", model="dcgan",
                                  sets=["ngf=8", "ndf=8"]), plugins)
    half.train()
    resumed = prepare_run(None, plugins, resume=half.dir.path, overrides={"steps": 28})
    assert resumed.step == 14
    assert resumed.train() == "completed"
    a, b = weights(full.dir.latest), weights(resumed.dir.latest)
    nets = [k for k in a if k.startswith(("net/", "opt/"))]
    assert nets and all(torch.equal(a[k], b[k]) for k in nets)
    events, _ = read_events(resumed.dir.events)
    starts = [e for e in events if e["type"] == "run_start"]
    assert len(starts) == 2 and starts[1]["resumed_from"].endswith("step-00000014.safetensors")


def test_run_observer_hooks_are_called(plugins, tmp_path, tiny_mnist):
    import types

    from workbench import hookimpl
    from workbench.host.manager import load_plugins

    seen = []
    observer = types.ModuleType("observer")
    observer.ganbench_run_start = hookimpl(lambda run: seen.append("start"))
    observer.ganbench_metrics = hookimpl(lambda run, metrics: seen.append("metrics"))
    observer.ganbench_sample_written = hookimpl(lambda run, path, step: seen.append(("sample", path.exists())))
    observer.ganbench_checkpoint_written = hookimpl(lambda run, path, step: seen.append(("checkpoint", step)))
    observer.ganbench_run_end = hookimpl(lambda run, reason: seen.append(reason))
    with_observer = load_plugins(extra_modules=[observer])
    run = prepare_run(config_for(with_observer, tmp_path, tiny_mnist, steps=8), with_observer)
    run.train()
    assert seen[0] == "start" and seen[-1] == "completed"
    assert "metrics" in seen and ("sample", True) in seen and ("checkpoint", 8) in seen


def test_events_name_their_files_relative_to_the_run_directory(plugins, tmp_path, tiny_mnist):
    run = prepare_run(config_for(plugins, tmp_path, tiny_mnist, steps=8), plugins)
    assert run.train() == "completed"
    copy = shutil.copytree(run.dir.path, tmp_path / "elsewhere" / "copied-run")  # another machine, say
    events, _ = read_events(copy / "events.jsonl")
    written = [e for e in events if e["type"] in ("sample", "checkpoint")]
    assert {e["type"] for e in written} == {"sample", "checkpoint"}
    for event in written:
        name = f"step-{event['step']:08d}"
        assert event["file"] in (f"samples/{name}.png", f"checkpoints/{name}.safetensors")
        assert (copy / event["file"]).is_file()
