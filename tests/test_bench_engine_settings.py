"""The speed settings of the engine: fused Adam, amp (CUDA only), compile, and their guards.

torch.compile is tested with the ``aot_eager`` backend by default: dynamo's
guards (on ``requires_grad`` among others) and AOTAutograd's graphs are where
a GAN whose D is frozen and unfrozen between calls loses gradients, and that
backend needs no C++ build. ``GANBENCH_INDUCTOR_TESTS=1`` adds the same check
with inductor (about a minute of C++ compilation on 2 cores).
"""

from __future__ import annotations

import contextlib
import functools
import os

import pytest
import torch
from torch import nn
from torch._dynamo.utils import counters

from plugins.losses import BCELoss
from workbench.base.errors import ConfigError
from workbench.engine import run as engine_run
from workbench.engine.devices import autocast_context, compile_networks
from workbench.engine.inference import sample_images
from workbench.engine.run import prepare_run
from workbench.engine.samples import generate
from workbench.host.configure import build_config
from workbench.modeling.model import TwoNetworkGAN

STEPS = 4


pytestmark = pytest.mark.usefixtures("one_thread")  # results, not speed, are checked here


def _small_gan() -> TwoNetworkGAN:
    """A GAN small enough to compile in seconds, with a BatchNorm in G and a D frozen during G's step."""
    torch.manual_seed(0)
    generator = nn.Sequential(nn.Linear(8, 32), nn.BatchNorm1d(32), nn.LeakyReLU(0.2), nn.Linear(32, 16), nn.Tanh(),
                              nn.Unflatten(1, (1, 4, 4)))
    discriminator = nn.Sequential(nn.Flatten(), nn.Linear(16, 32), nn.LeakyReLU(0.2), nn.Linear(32, 1))
    model = TwoNetworkGAN(generator, discriminator, {"lr": 1e-3, "b1": 0.5, "b2": 0.999}, latent_dim=8)
    model.to(torch.device("cpu"))
    model.make_optimizers()
    return model


def _train(model: TwoNetworkGAN) -> list[tuple[float, float]]:
    torch.manual_seed(1)
    reals = [torch.rand(16, 1, 4, 4) * 2 - 1 for _ in range(STEPS)]
    noise = iter([torch.randn(16, 8) for _ in range(STEPS)])
    model.draw_noise = lambda n, device: next(noise)
    losses = []
    for real in reals:
        metrics = model.train_step(real, BCELoss())
        losses.append((metrics["d_loss"].item(), metrics["g_loss"].item()))
    return losses


def _compiled_matches_eager(backend: str, tolerance: float) -> None:
    eager, compiled = _small_gan(), _small_gan()
    initial = {k: {n: t.clone() for n, t in net.state_dict().items()} for k, net in eager.networks.items()}
    compile_networks(compiled, "on", backend=backend)
    assert _train(compiled) == pytest.approx(_train(eager), rel=1e-5, abs=1e-6)
    for key, net in eager.networks.items():
        compiled_state = compiled.networks[key].state_dict()  # nn.Module.compile keeps the names
        for name, value in net.state_dict().items():
            if name.endswith("num_batches_tracked"):
                assert compiled_state[name] == value == STEPS  # G's BatchNorm saw one batch per step
                continue
            # every weight moved in both models (no gradient went missing), and by the same amount;
            # BatchNorm's running statistics were updated the same way.
            assert not torch.equal(value, initial[key][name]), f"{key}.{name} never changed"
            torch.testing.assert_close(compiled_state[name], value, rtol=1e-5, atol=tolerance,
                                       msg=f"compiled {key}.{name} differs from eager")


def test_compiled_networks_lose_no_gradient_when_d_is_frozen_and_unfrozen():
    _compiled_matches_eager("aot_eager", tolerance=1e-6)


@pytest.mark.skipif(not os.environ.get("GANBENCH_INDUCTOR_TESTS"),
                    reason="inductor needs about a minute of C++ compilation here; set GANBENCH_INDUCTOR_TESTS=1")
def test_inductor_compiled_networks_match_eager():
    # Inductor's kernels round differently; the bias in front of G's BatchNorm gets only rounding noise as
    # gradient, which Adam turns into steps of up to lr: allow lr / 2 there.
    _compiled_matches_eager("inductor", tolerance=5e-4)


def test_a_compiled_run_trains_samples_and_writes_a_checkpoint_that_loads_uncompiled(plugins, tmp_path, monkeypatch):
    monkeypatch.setattr(engine_run, "compile_networks", functools.partial(compile_networks, backend="aot_eager"))
    config = build_config(plugins.registry, "mlp_gan", sets=["compile=on", "batch_size=16", "sample_count=4"],
                          steps=3, device="cpu", runs_dir=str(tmp_path))
    run = prepare_run(config, plugins)
    assert all(net._compiled_call_impl is not None for net in run.model.networks.values())
    assert run.train() == "completed"
    images = sample_images(run.dir.path, plugins, 4, 0, "cpu")  # a plain, uncompiled model loads it
    assert images.shape == (4, 1, 28, 28)


def test_sample_grids_run_the_compiled_networks_eagerly_and_compile_nothing():
    model = _small_gan()
    compile_networks(model, "on", backend="aot_eager")
    _train(model)
    graphs = dict(counters["stats"])
    images = generate(model, torch.randn(5, 8))  # another batch size, without gradients: a new graph otherwise
    assert images.shape == (5, 1, 4, 4)
    assert dict(counters["stats"]) == graphs
    _train(model)
    assert dict(counters["stats"]) == graphs  # training still replays the graphs it compiled first


def test_fused_adam_is_used_on_cpu(plugins):
    spec = plugins.registry.model("mlp_gan")
    model = spec.build(spec.defaults(), (1, 28, 28))
    model.to(torch.device("cpu"))
    model.make_optimizers()
    assert all(opt.defaults["fused"] for opt in model.optimizers.values())


def test_bf16_autocast_is_refused_on_cpu_with_one_sentence(plugins, tmp_path):
    config = build_config(plugins.registry, "mlp_gan", sets=["amp=bf16"], steps=2, device="cpu",
                          runs_dir=str(tmp_path))
    with pytest.raises(ConfigError, match=r"^amp=bf16 needs a CUDA GPU: on cpu bf16 autocast is slower"):
        prepare_run(config, plugins)
    assert not any(tmp_path.iterdir())  # refused before a run directory was made


def test_autocast_is_a_no_op_unless_bf16_on_cuda():
    assert isinstance(autocast_context(torch.device("cpu"), "none"), contextlib.nullcontext)
    assert isinstance(autocast_context(torch.device("cpu"), "bf16"), contextlib.nullcontext)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="bf16 autocast is a CUDA setting; no CUDA GPU here")
def test_bf16_autocast_training_converges_like_float32(plugins, tmp_path):
    finals = {}
    for amp in ("none", "bf16"):
        config = build_config(plugins.registry, "mlp_gan", sets=[f"amp={amp}", "log_every=100"], steps=600,
                              device="cuda", runs_dir=str(tmp_path / amp))
        run = prepare_run(config, plugins)
        events = []
        run.listeners.append(lambda e: events.append(e) if e["type"] == "metrics" else None)
        assert run.train() == "completed"
        finals[amp] = events[-1]
    for key in ("d_loss", "g_loss"):  # the same game reached: D near its equilibrium loss, G's loss alike
        assert finals["bf16"][key] == pytest.approx(finals["none"][key], abs=0.25), key
    assert 0.2 < finals["bf16"]["d_loss"] < 0.8
