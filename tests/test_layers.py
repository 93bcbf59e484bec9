"""The matrix-product layers compute what the standard layers compute, with the same parameters."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from workbench.modeling.layers import PointInputConvTranspose2d, WholeInputConv2d

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def _pair(standard: nn.Module, fast_class, memory_format, device) -> tuple[nn.Module, nn.Module]:
    fast = fast_class(standard.in_channels, standard.out_channels, standard.kernel_size, bias=standard.bias is not None)
    fast.load_state_dict(standard.state_dict())  # the same keys and shapes: checkpoints move both ways
    return (standard.to(device, memory_format=memory_format).double(),
            fast.to(device, memory_format=memory_format).double())


def _same_function(standard, fast, x):
    """Outputs, input gradients and parameter gradients agree (float64, so only rounding could differ)."""
    xs, xf = x.clone().requires_grad_(), x.clone().requires_grad_()
    out_s, out_f = standard(xs), fast(xf)
    assert out_f.shape == out_s.shape
    torch.testing.assert_close(out_f, out_s)
    grad = torch.randn_like(out_s)
    out_s.backward(grad)
    out_f.backward(grad)
    torch.testing.assert_close(xf.grad, xs.grad)
    for (name, ps), pf in zip(standard.named_parameters(), fast.parameters(), strict=True):
        torch.testing.assert_close(pf.grad, ps.grad, msg=name)
    return out_f, xf.grad


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("memory_format", [torch.contiguous_format, torch.channels_last], ids=["nchw", "nhwc"])
@pytest.mark.parametrize("bias", [False, True])
def test_whole_input_conv_is_the_convolution(device, memory_format, bias):
    torch.manual_seed(0)
    standard, fast = _pair(nn.Conv2d(32, 3, 4, 1, 0, bias=bias), WholeInputConv2d, memory_format, device)
    x = torch.randn(6, 32, 4, 4, dtype=torch.float64, device=device).to(memory_format=memory_format)
    out, x_grad = _same_function(standard, fast, x)
    assert out.shape == (6, 3, 1, 1)
    assert x_grad.is_contiguous(memory_format=memory_format)  # the layers below keep their memory format
    bigger = torch.randn(2, 32, 7, 5, dtype=torch.float64, device=device)  # another size: the convolution itself
    torch.testing.assert_close(fast(bigger), standard(bigger))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("memory_format", [torch.contiguous_format, torch.channels_last], ids=["nchw", "nhwc"])
@pytest.mark.parametrize("bias", [False, True])
def test_point_input_transposed_conv_is_the_transposed_convolution(device, memory_format, bias):
    torch.manual_seed(0)
    standard, fast = _pair(nn.ConvTranspose2d(20, 8, 4, 1, 0, bias=bias), PointInputConvTranspose2d,
                           memory_format, device)
    z = torch.randn(5, 20, 1, 1, dtype=torch.float64, device=device)
    out, _ = _same_function(standard, fast, z)
    assert out.shape == (5, 8, 4, 4)
    assert out.is_contiguous(memory_format=memory_format)  # the next layer gets the model's memory format
    wider = torch.randn(2, 20, 3, 3, dtype=torch.float64, device=device)
    torch.testing.assert_close(fast(wider), standard(wider))


def test_padding_is_refused_with_a_sentence():
    with pytest.raises(ValueError, match="takes no padding"):
        WholeInputConv2d(8, 1, 4, 1, 1)
    with pytest.raises(ValueError, match="takes no padding"):
        PointInputConvTranspose2d(8, 1, 4, 1, 1)


def test_the_dcgan_uses_them_and_keeps_its_checkpoint_keys():
    from plugins.classic.models import DcganDiscriminator, DcganGenerator
    from plugins.dcgan import build
    hp = {"latent_dim": 100, "ngf": 8, "ndf": 8, "image_size": 32, "lr": 2e-4, "b1": 0.5, "b2": 0.999}
    model = build(hp, (1, 32, 32))
    assert isinstance(model.G.main[0], PointInputConvTranspose2d)
    assert isinstance(model.D.main[-1], WholeInputConv2d)
    DcganGenerator(100, 8, 1, 32).load_state_dict(model.G.state_dict())  # strict: same names and shapes
    DcganDiscriminator(8, 1, 32).load_state_dict(model.D.state_dict())
