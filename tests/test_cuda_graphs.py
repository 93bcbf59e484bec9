"""The training step replayed as a CUDA graph (``cuda_graphs``): when it is used, and that it trains the same.

The decisions (which models are graphed, ``on`` refused without CUDA) are
checked everywhere; the graphs themselves only where PyTorch sees a CUDA GPU.
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from plugins.aae import AAE
from workbench.base.errors import ConfigError
from workbench.engine.graphs import WARMUP_STEPS, GraphedStep, graph_safe, use_graphs
from workbench.engine.run import prepare_run
from workbench.host.configure import build_config
from workbench.modeling.model import TwoNetworkGAN

# D's weights gather gradients from two streams on purpose (queue_beside); PyTorch's warning about it is silenced.
pytestmark = pytest.mark.filterwarnings("error:The AccumulateGrad node's stream does not match")

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a CUDA GPU; none here")

# (model, settings): the core models at sizes that build in a moment.
CORE = [("mlp_gan", []), ("aae", []), ("dcgan", ["image_size=32", "ngf=16", "ndf=16"])]


class OverridesTheStep(TwoNetworkGAN):
    """Overrides ``train_step`` (which might branch in Python) without declaring it graph-safe."""

    def train_step(self, real, loss):
        return super().train_step(real, loss)


class DeclaredSafe(OverridesTheStep):
    cuda_graph_safe = True

    def train_step(self, real, loss):
        return super().train_step(real, loss)


def test_only_a_class_that_defines_the_step_can_declare_it_graph_safe():
    g, d = nn.Linear(2, 4), nn.Linear(4, 1)
    assert graph_safe(TwoNetworkGAN(g, d, {}, latent_dim=2))
    assert graph_safe(AAE((1, 8, 8), {"latent_dim": 2, "adv_weight": 0.5}))
    assert not graph_safe(OverridesTheStep(g, d, {}, latent_dim=2))  # overrides train_step, declares nothing
    assert graph_safe(DeclaredSafe(g, d, {}, latent_dim=2))


def test_graphs_are_used_on_cuda_only_and_as_asked():
    safe, unsafe = TwoNetworkGAN(nn.Linear(2, 4), nn.Linear(4, 1), {}, 2), OverridesTheStep(nn.Linear(2, 4),
                                                                                           nn.Linear(4, 1), {}, 2)
    gpu, cpu = torch.device("cuda"), torch.device("cpu")
    assert use_graphs("auto", gpu, safe) and not use_graphs("auto", gpu, unsafe)
    assert use_graphs("on", gpu, unsafe)  # the user's call
    assert not use_graphs("off", gpu, safe)
    assert not any(use_graphs(setting, cpu, safe) for setting in ("auto", "on", "off"))


def test_cuda_graphs_on_is_refused_without_a_gpu_in_one_sentence(plugins, tmp_path):
    config = build_config(plugins.registry, "mlp_gan", sets=["cuda_graphs=on"], steps=2, device="cpu",
                          runs_dir=str(tmp_path))
    with pytest.raises(ConfigError, match=r"^cuda_graphs=on needs a CUDA GPU; this run trains on cpu, so use "
                                          r"cuda_graphs=auto or off\.$"):
        prepare_run(config, plugins)
    assert not any(tmp_path.iterdir())  # refused before a run directory was made


def test_a_run_on_cpu_is_not_graphed(plugins, tmp_path):
    config = build_config(plugins.registry, "mlp_gan", steps=2, device="cpu", runs_dir=str(tmp_path))
    run = prepare_run(config, plugins)
    assert not run.graphed
    assert run.train() == "completed"


def test_a_run_saved_before_the_setting_existed_resumes_with_its_default(plugins, tmp_path):
    config = build_config(plugins.registry, "mlp_gan", steps=2, device="cpu", runs_dir=str(tmp_path))
    run = prepare_run(config, plugins)
    assert run.train() == "completed"
    saved = json.loads(run.dir.config.read_text())
    del saved["engine"]["cuda_graphs"]  # config.json as the first release wrote it
    run.dir.config.write_text(json.dumps(saved))
    for checkpoint in run.dir.checkpoints.glob("*.safetensors"):
        checkpoint.unlink()  # resume from config.json alone
    resumed = prepare_run(None, plugins, resume=run.dir.path, overrides={"steps": 4})
    assert resumed.config.engine["cuda_graphs"] == "auto"
    assert resumed.train() == "completed"


# -- on a GPU ---------------------------------------------------------------
@pytest.fixture
def deterministic_cudnn():
    """cuDNN's deterministic algorithms: two runs of the DCGAN then differ only if the graph changed something
    (its default algorithms sum weight gradients in varying order, and Adam magnifies that over steps)."""
    saved = torch.backends.cudnn.deterministic
    torch.backends.cudnn.deterministic = True
    yield
    torch.backends.cudnn.deterministic = saved


def _run(plugins, tmp_path, model, sets, graphs, steps, name=None):
    config = build_config(plugins.registry, model, sets=sets + [f"cuda_graphs={graphs}", "log_every=4"],
                          steps=steps, device="cuda", runs_dir=str(tmp_path / graphs), seed=3)
    config.name = name
    return prepare_run(config, plugins)


def _trained(run) -> tuple[dict[str, torch.Tensor], list[dict]]:
    events = []
    run.listeners.append(events.append)
    assert run.train() == "completed", run.end_message
    assert not [e for e in events if e["type"] == "warning"], events
    state = {f"{name}.{key}": value.detach().float().cpu().clone()
             for name, net in run.model.networks.items() for key, value in net.state_dict().items()}
    return state, [e for e in events if e["type"] == "metrics"]


@cuda
@pytest.mark.parametrize("model,sets", CORE, ids=[m for m, _ in CORE])
def test_a_graphed_run_trains_like_an_eager_one(plugins, tmp_path, model, sets, deterministic_cudnn):
    steps = WARMUP_STEPS + 13  # the warm-up, the captured step, then replays
    runs = {graphs: _run(plugins, tmp_path, model, sets, graphs, steps) for graphs in ("off", "on")}
    assert runs["on"].graphed and not runs["off"].graphed
    (eager, eager_metrics), (graphed, graphed_metrics) = _trained(runs["off"]), _trained(runs["on"])
    lr = runs["on"].config.hyperparams["lr"]
    for key, value in eager.items():  # a missing gradient or a stale noise draw would move weights by ~lr
        assert (graphed[key] - value).abs().max() < lr / 2, key
    for e, g in zip(eager_metrics, graphed_metrics, strict=True):
        assert g["step"] == e["step"]
        assert g["d_loss"] == pytest.approx(e["d_loss"], rel=1e-3, abs=1e-4)
        assert g["g_loss"] == pytest.approx(e["g_loss"], rel=1e-3, abs=1e-4)


@cuda
@pytest.mark.parametrize("graphs", ["off", "on"])
def test_the_real_batch_beside_the_fakes_trains_exactly_as_on_one_stream(plugins, tmp_path, graphs, monkeypatch,
                                                                        deterministic_cudnn):
    """The DCGAN's D passes over the real batch on a second stream while G draws the fakes (``overlap_streams``):
    the same weights, BatchNorm statistics and losses as on one stream, bit for bit."""
    results = []
    for overlap in (False, True):
        run = _run(plugins, tmp_path / str(overlap), "dcgan", ["image_size=32", "ngf=16", "ndf=16"], graphs,
                   WARMUP_STEPS + 9)
        monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)  # the same algorithms in both runs
        run.model.overlap_streams = overlap
        state, metrics = _trained(run)
        results.append((state, [[m[k] for k in ("step", "d_loss", "g_loss", "d_real", "d_fake")] for m in metrics]))
    (one_state, one_metrics), (two_state, two_metrics) = results
    for key, value in one_state.items():  # a missing wait, or BatchNorm seeing the fakes first, would show
        assert torch.equal(two_state[key], value), key
    assert two_metrics == one_metrics


@cuda
def test_every_weight_and_batchnorm_statistic_moves_in_each_replay(plugins, tmp_path):
    run = _run(plugins, tmp_path, "dcgan", ["image_size=32", "ngf=16", "ndf=16"], "on", 100)
    step = run._step_function()
    assert isinstance(step, GraphedStep)
    batches = run.data.batch_indices(0)
    for _ in range(WARMUP_STEPS + 1):
        step(next(batches))
    assert step.graph is not None
    params = {f"{n}.{k}": p.detach().clone() for n, net in run.model.networks.items()
              for k, p in net.named_parameters()}
    tracked = {f"{n}.{k}": b.clone() for n, net in run.model.networks.items()
               for k, b in net.named_buffers() if k.endswith("num_batches_tracked")}
    step(next(batches))
    torch.cuda.synchronize()
    now = {f"{n}.{k}": p for n, net in run.model.networks.items() for k, p in net.named_parameters()}
    frozen = [key for key, before in params.items() if torch.equal(before, now[key])]
    assert not frozen  # D is frozen for G's update inside the graph, and trained in its own
    buffers = {f"{n}.{k}": b for n, net in run.model.networks.items() for k, b in net.named_buffers()}
    for key, before in tracked.items():  # G runs once per step, D three times (fakes for G, real, fakes)
        assert int(buffers[key] - before) == (1 if key.startswith("generator") else 3), key


@cuda
def test_a_graphed_run_resumes_where_it_stopped(plugins, tmp_path, deterministic_cudnn):
    sets = ["image_size=32", "ngf=16", "ndf=16", "checkpoint_every=10"]
    whole = _run(plugins, tmp_path / "whole", "dcgan", sets, "on", 20)
    whole_state, _ = _trained(whole)
    first = _run(plugins, tmp_path / "parts", "dcgan", sets, "on", 10, name="parts")
    _trained(first)
    resumed = prepare_run(None, plugins, resume=first.dir.path, overrides={"steps": 20})
    assert resumed.step == 10 and resumed.graphed
    resumed_state, _ = _trained(resumed)
    lr = whole.config.hyperparams["lr"]
    for key, value in whole_state.items():  # the noise generator's position after replays was saved
        assert (resumed_state[key] - value).abs().max() < lr / 2, key


@cuda
def test_a_step_that_cannot_be_captured_goes_on_eagerly_with_a_warning():
    device = torch.device("cuda")
    weight = torch.zeros(3, device=device)

    noise = torch.Generator(device=device).manual_seed(0)

    def step(idx):
        weight.add_(idx.float().mean())
        torch.randn(2, device=device)  # both generators in use while the capture fails
        torch.randn(2, device=device, generator=noise)
        if weight.sum().item() > 1e9:  # a host sync: not allowed while capturing
            weight.zero_()
        return weight.clone()

    warnings = []
    model = SimpleNamespace(networks={}, optimizers={}, noise=noise)
    graphed = GraphedStep(step, 4, model, device,
                          on_fallback=warnings.append)
    for _ in range(WARMUP_STEPS + 3):
        values = graphed(torch.ones(4, dtype=torch.long, device=device))
    assert graphed.eager and graphed.graph is None
    assert len(warnings) == 1 and warnings[0].startswith("The training step could not be captured as a CUDA graph")
    assert values.tolist() == [float(WARMUP_STEPS + 3)] * 3  # every step ran, none was lost to the capture
    reference = torch.Generator(device=device).manual_seed(0)
    for _ in range(WARMUP_STEPS + 3):  # the failed capture drew nothing from the run's generator
        torch.randn(2, device=device, generator=reference)
    assert torch.equal(torch.randn(2, device=device, generator=noise),
                       torch.randn(2, device=device, generator=reference))

    strict = GraphedStep(step, 4, model, device,
                         on_fallback=warnings.append, strict=True)
    with pytest.raises(ConfigError, match=r"^cuda_graphs=on, but the training step could not be captured"):
        for _ in range(WARMUP_STEPS + 1):
            strict(torch.ones(4, dtype=torch.long, device=device))
