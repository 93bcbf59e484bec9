"""The classic loops and the engine run the same algorithm: same weights, batches and noise give the same model.

Each classic script is driven with the engine's initial weights (loading them
strictly proves the architectures match), the same batches and the same noise
(the engine's ``draw_noise`` is pointed at the script's random source, in the
order the script draws). After a few steps every parameter and BatchNorm
statistic must agree: freezing D during G's step, logits with
``binary_cross_entropy_with_logits`` instead of a Sigmoid and ``BCELoss``,
fused Adam and channels_last change nothing but rounding.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from plugins.losses import BCELoss
from workbench.data.device import resize_uint8
from workbench.host.workloads import registered_workloads

STEPS = 3
SEED = 123


pytestmark = pytest.mark.usefixtures("one_thread")


def _batches(fashion_images, size: int, channels: int, batch: int) -> list[torch.Tensor]:
    images = fashion_images[: STEPS * batch].unsqueeze(1)
    images = resize_uint8(images, size).float() / 127.5 - 1
    if channels == 3:  # a colour variant of the same images, so the three channels differ
        images = torch.cat([images, images.flip(-1), -images], 1)
    return list(images.split(batch))


def _numpy_noise(model):
    return lambda n, device: torch.as_tensor(np.random.normal(0, 1, (n, model.latent_dim)), dtype=torch.float32)


def _torch_noise(model):
    return lambda n, device: torch.randn(n, model.latent_dim, 1, 1).view(n, model.latent_dim)


CASES = {
    # workload: (hyper-parameter overrides, channels, batch size, noise source of the script)
    "mlp_gan": ({}, 1, 16, _numpy_noise),
    "aae": ({}, 1, 16, _numpy_noise),
    "dcgan-32": ({"ngf": 8, "ndf": 8}, 1, 16, _torch_noise),
    "dcgan-64": ({"ngf": 4, "ndf": 4}, 3, 8, _torch_noise),
}


def _case(name: str, plugins):
    """The workload, its model spec, the hyper-parameters both paths use, and the image shape."""
    workload = registered_workloads(plugins.registry)[name]  # registered by the core plugin classic
    overrides, channels, batch, _ = CASES[name]
    spec = plugins.registry.model(workload.model)
    hp = {**spec.defaults(), **workload.hyperparams, **overrides, "batch_size": batch}
    return workload, spec, hp, (channels, hp["image_size"], hp["image_size"])


@pytest.mark.parametrize("name", list(CASES))
def test_classic_loop_and_engine_step_compute_the_same_updates(name, plugins, fashion_images, tmp_path):
    workload, spec, hp, shape = _case(name, plugins)
    _, channels, batch, noise = CASES[name]
    torch.manual_seed(0)
    engine = spec.build(hp, shape)
    engine.to(torch.device("cpu"))
    engine.make_optimizers()
    classic = workload.classic(hp, shape, torch.device("cpu"), tmp_path)
    for key, net in classic.networks.items():
        net.load_state_dict(engine.networks[key].state_dict())  # strict: same layers, same shapes
    # The scripts' progress grids draw from the same NumPy stream (aae.py) and run G in train mode (the
    # tutorial), which would shift the noise and G's BatchNorm statistics: they are not part of the algorithm.
    classic.save_samples = False

    batches = _batches(fashion_images, hp["image_size"], channels, batch)
    np.random.seed(SEED)
    torch.manual_seed(SEED)
    classic_losses = [(d, g) for _, d, g in classic.train([(b, None) for b in batches], 1)]

    np.random.seed(SEED)
    torch.manual_seed(SEED)
    engine.draw_noise = noise(engine)
    memory = torch.channels_last if engine.channels_last else torch.contiguous_format
    loss = BCELoss()
    engine_losses = []
    for real in batches:
        metrics = engine.train_step(real.contiguous(memory_format=memory), loss)
        engine_losses.append((metrics["d_loss"].item(), metrics["g_loss"].item()))

    assert len(classic_losses) == STEPS
    np.testing.assert_allclose(engine_losses, classic_losses, rtol=1e-4, atol=1e-5)
    # Adam moves every weight by about lr per step whatever the gradient's size, so a gradient that went
    # missing or differs shows as a difference of ~lr in most elements. Rounding differences stay far below
    # lr / 2, except where the gradient is itself pure rounding noise (the bias of a Linear feeding a
    # BatchNorm, which the normalisation cancels): there Adam's sign may flip on a few elements.
    tolerance = hp["lr"] / 2
    for key, net in classic.networks.items():
        engine_state = engine.networks[key].state_dict()
        for tensor_name, value in net.state_dict().items():
            if not value.is_floating_point():
                assert torch.equal(engine_state[tensor_name], value), f"{name}: {key}.{tensor_name}"
                continue
            off = (engine_state[tensor_name].float() - value.float()).abs() > tolerance + 1e-4 * value.abs()
            assert off.float().mean() < 0.01, \
                f"{name}: {key}.{tensor_name} differs after {STEPS} steps in {int(off.sum())} of {off.numel()} elements"


@pytest.mark.parametrize("name", list(CASES))
def test_the_training_really_moved_every_network(name, plugins, fashion_images, tmp_path):
    """Guards the test above against passing vacuously: the classic loop changes every network's weights."""
    workload, _, hp, shape = _case(name, plugins)
    _, channels, batch, _ = CASES[name]
    classic = workload.classic(hp, shape, torch.device("cpu"), tmp_path)
    before = {k: [p.detach().clone() for p in net.parameters()] for k, net in classic.networks.items()}
    batches = _batches(fashion_images, hp["image_size"], channels, batch)
    for _ in classic.train([(b, None) for b in batches], 1):
        pass
    for key, net in classic.networks.items():
        for old, new in zip(before[key], net.parameters()):
            assert not torch.equal(old, new), f"{name}: a parameter of {key} never changed"


@pytest.mark.parametrize("loss_name", ["bce", "lsgan", "hinge", "wgan-gp"])
def test_reusing_ds_pass_over_the_fakes_leaves_every_update_bit_identical(loss_name, plugins, fashion_images):
    """mlp_gan declares reuse_fake_logits: D's logits on the fakes from G's update also serve D's update.
    The weights, optimizer moments and reported metrics must equal those of the two-pass step bit for bit."""
    spec = plugins.registry.model("mlp_gan")
    hp = {**spec.defaults(), "batch_size": 16}
    models, d_passes = {}, {}
    for reuse in (True, False):
        torch.manual_seed(0)
        model = spec.build(hp, (1, 28, 28))
        assert model.reuse_fake_logits  # declared by the plugin
        model.reuse_fake_logits = reuse
        model.to(torch.device("cpu"))
        model.make_optimizers()
        calls = d_passes[reuse] = []
        model.D.register_forward_hook(lambda *_, calls=calls: calls.append(1))
        noise = torch.Generator().manual_seed(SEED)
        model.draw_noise = lambda n, device, noise=noise: torch.randn(n, 100, generator=noise)
        loss = plugins.registry.loss(loss_name).build()
        torch.manual_seed(SEED)  # wgan-gp's interpolation draws from the global generator
        models[reuse] = model, [model.train_step(real, loss) for real in _batches(fashion_images, 28, 1, 16)]
    (reused, reused_metrics), (plain, plain_metrics) = models[True], models[False]
    if loss_name == "wgan-gp":  # a penalty: the fakes go through D twice either way, then the interpolates
        assert len(d_passes[True]) == len(d_passes[False]) == 4 * STEPS
    else:
        assert len(d_passes[True]) == 2 * STEPS and len(d_passes[False]) == 3 * STEPS
    for a, b in zip(reused_metrics, plain_metrics):
        assert {k: v.item() for k, v in a.items()} == {k: v.item() for k, v in b.items()}
    for key, net in plain.networks.items():
        for name, value in net.state_dict().items():
            assert torch.equal(reused.networks[key].state_dict()[name], value), f"{key}.{name}"
    for key, opt in plain.optimizers.items():
        for p_plain, p_reused in zip(opt.param_groups[0]["params"], reused.optimizers[key].param_groups[0]["params"]):
            for slot, value in opt.state[p_plain].items():
                assert torch.equal(reused.optimizers[key].state[p_reused][slot], value), f"{key} {slot}"


def test_fused_adam_updates_exactly_as_torch_adam_does():
    """FusedAdam calls the fused kernel itself; torch.optim.Adam(fused=True) must give the same bits."""
    from workbench.modeling.model import FusedAdam

    torch.manual_seed(0)
    shapes = [(64, 100), (64,), (32, 64), (32,), (1, 32)]
    ours, theirs = ([torch.nn.Parameter(torch.randn(s)) for s in shapes] for _ in range(2))
    for a, b in zip(ours, theirs):
        b.data.copy_(a.data)
    ours_opt = FusedAdam(ours, lr=2e-4, betas=(0.5, 0.999))
    theirs_opt = torch.optim.Adam(theirs, lr=2e-4, betas=(0.5, 0.999), fused=True)
    for step in range(5):
        for a, b in zip(ours, theirs):
            a.grad = torch.randn_like(a) * 10 ** (step - 3)
            b.grad = a.grad.clone()
        ours_opt.step()
        theirs_opt.step()
        ours_opt.zero_grad()
        assert all(p.grad is None for p in ours)
    for a, b in zip(ours, theirs):
        assert not torch.equal(a, torch.zeros_like(a)) and torch.equal(a, b)
        for slot in ("step", "exp_avg", "exp_avg_sq"):
            assert torch.equal(ours_opt.state[a][slot], theirs_opt.state[b][slot]), slot
    # the checkpoint format is Adam's: a state saved by one loads into the other
    theirs_opt.load_state_dict(ours_opt.state_dict())
