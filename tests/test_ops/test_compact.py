"""Compact fake quantization against the regular kernels: same forward and gradients, fewer saved bytes."""
import pytest
import torch
import torch.nn.functional as F

from mmvitq.ops import compact as compact_ops
from mmvitq.ops import (compact_activations, fake_quant_per_channel, fake_quant_per_head, fake_quant_per_tensor,
                        quant_range, reference)
from mmvitq.ops.fake_quant import _ext
from mmvitq.quantizers import LSQQuantizer


def rand(shape, seed=0):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed)) * 2


def quantize_then_consume(x, scale, zero, weight, op, qmin, qmax):
    """fake-quant `x` (per tensor, channel or head) and feed it to a linear or to a matmul with its transpose."""
    if op == 'head':
        y = fake_quant_per_head(x, scale, zero, num_heads=2, axis=-1, quant_min=qmin, quant_max=qmax, grad_factor=0.3)
    elif op == 'tensor':
        y = fake_quant_per_tensor(x, scale, zero, quant_min=qmin, quant_max=qmax, grad_factor=0.3)
    else:
        y = fake_quant_per_channel(x, scale, zero, axis=-1, quant_min=qmin, quant_max=qmax, grad_factor=0.3)
    if op == 'matmul':  # like q @ k^T: the matmul saves a transposed view of the fake-quant output
        return y, y @ y.transpose(-2, -1) @ weight[:, :y.shape[-2]].T
    return y, F.linear(y, weight)


def run(compact, op, symmetric, bits=4):
    qmin, qmax = quant_range(bits, symmetric)
    channels = {'tensor': 1, 'head': 2}.get(op, 8)
    x = rand((3, 5, 8)).requires_grad_()
    x.data[0, 0, 0] = 100.0  # clipped above
    x.data[0, 0, 1] = -100.0  # clipped below
    scale = (torch.rand(channels, generator=torch.Generator().manual_seed(1)) * 0.5 + 0.2).requires_grad_()
    zero = torch.full((channels, ), 0.0 if symmetric else 7.0).requires_grad_(not symmetric)
    weight = rand((6, 8), seed=2).requires_grad_()
    with compact_activations() if compact else torch.enable_grad():
        y, out = quantize_then_consume(x, scale, zero, weight, op, qmin, qmax)
    y.retain_grad()
    (out * rand(out.shape, seed=3)).sum().backward()
    return y.detach(), out.detach(), x.grad, scale.grad, zero.grad, weight.grad, y.grad


@pytest.mark.parametrize('op', ['linear', 'matmul', 'tensor', 'head'])
@pytest.mark.parametrize('symmetric', [True, False])
def test_compact_matches_regular_kernels(op, symmetric):
    y0, out0, dx0, ds0, dz0, dw0, dy = run(False, op, symmetric)
    y1, out1, dx1, ds1, dz1, dw1, _ = run(True, op, symmetric)
    assert torch.equal(y1, y0) and torch.equal(out1, out0)
    assert torch.equal(dx1, dx0)
    torch.testing.assert_close(dw1, dw0, rtol=0, atol=0)  # the saved levels rebuild the input of the linear exactly
    # the scale gradient reads the rounding residual on a 1/250 grid (clamped to +-124/250): within
    # 1/250 per element, i.e. grad_factor / 250 * sum |d loss / d y| over the elements of each scale
    per_scale = dy.abs().reshape(-1, ds0.numel(), 8 // ds0.numel() if op == 'head' else 1)
    bound = 0.3 / 250 * (per_scale.sum(dim=(0, 2)) if op != 'tensor' else dy.abs().sum())
    assert ((ds1 - ds0).abs() <= bound + 1e-6).all()
    assert not torch.equal(ds1, ds0) or ds0.abs().max() == 0  # residuals are rounded, not kept
    assert (ds0.abs() > 10 * bound).any()  # the bound is tight enough to catch a wrong slope
    if not symmetric:
        torch.testing.assert_close(dz1, dz0)


def test_compact_saves_fewer_bytes():
    """The saved tensors of a fake-quant + linear: two float copies normally, two bytes per element compact."""
    def saved_bytes(compact):
        sizes = []

        def pack(t):  # compact's own packing, then the bytes of what it keeps (a view of levels: none)
            kept = compact_ops._pack(t) if compact else t
            sizes.append(t.numel() * t.element_size() if isinstance(kept, torch.Tensor) else 0)
            return kept
        x = rand((64, 49, 32)).requires_grad_()
        q = LSQQuantizer(bits=4, granularity='channel', num_channels=32, init='minmax')
        q.set_qparams(torch.full((32, ), 0.1), 0.0)
        weight = torch.randn(32, 32, requires_grad=True)
        with compact_activations() if compact else torch.enable_grad():
            with torch.autograd.graph.saved_tensors_hooks(pack, compact_ops._unpack):
                out = F.linear(q(x), weight)
        out.sum().backward()
        return sum(s for s in sizes if s >= x.numel())  # the activation-sized ones
    regular, compact = saved_bytes(False), saved_bytes(True)
    assert regular == 2 * 4 * 64 * 49 * 32
    assert compact == 2 * 64 * 49 * 32  # int8 levels + int8 residual codes; the linear keeps a reference


def test_compact_output_modified_in_place_is_saved_as_is():
    """A fake-quant output changed in place is no longer its levels: the consumer keeps the real tensor."""
    x = rand((4, 8)).requires_grad_()
    scale = torch.full((1, ), 0.5, requires_grad=True)
    weight = rand((3, 8), seed=1).requires_grad_()
    with compact_activations():
        y = fake_quant_per_tensor(x, scale, quant_min=-8, quant_max=7)
        y.add_(0.25)
        F.linear(y, weight).sum().backward()
    torch.testing.assert_close(weight.grad, y.detach().sum(0).expand(3, 8))


@pytest.mark.parametrize('symmetric', [True, False])
@pytest.mark.parametrize('bits', [2, 4, 8])
def test_pack_kernel_matches_reference_and_round_trips(symmetric, bits):
    qmin, qmax = quant_range(bits, symmetric)
    x = rand((4, 6, 33))
    x[0, 0, :4] = torch.tensor([float('nan'), float('inf'), -float('inf'), 0.0])
    scale = torch.rand(6, generator=torch.Generator().manual_seed(1)) * 0.3 + 0.05
    zero = torch.full((6, ), 0.0 if symmetric else float(qmax // 2))
    x[1, 2, :3] = (torch.tensor([0.5, 1.5, -2.5]) + (0 if symmetric else -zero[2])) * scale[2]  # ties
    args = (scale, zero, 6, 33, qmin, qmax)
    out, level, resid = _ext.fake_quant_pack(x, *args)
    ref = reference.pack(x, *args)
    for got, want in zip((out, level, resid), ref):
        assert torch.equal(got.isnan(), want.isnan()) and torch.equal(got.nan_to_num(0), want.nan_to_num(0))
    regular = _ext.fake_quant_forward(x, *args)
    assert torch.equal(out.nan_to_num(7), regular.nan_to_num(7))
    for quantized in (True, False):
        rebuilt = _ext.fake_quant_unpack(level, resid, *args, quantized)
        want = reference.unpack(level, resid, *args, quantized)
        assert torch.equal(rebuilt.nan_to_num(7), want.nan_to_num(7))
    assert torch.equal(_ext.fake_quant_unpack(level, resid, *args, True).nan_to_num(7), out.nan_to_num(7))
    again = _ext.fake_quant_pack(_ext.fake_quant_unpack(level, resid, *args, False), *args)
    assert torch.equal(again[1], level) and torch.equal(again[2], resid)
    inside = (resid > -127)
    v = x * (1 / scale.reshape(1, 6, 1))  # as the kernels compute it
    residual = v - torch.round(v)
    assert ((resid.float() / 250 - residual)[inside].abs() <= 1.01 / 250).all()  # ties: 124 / 250 for 0.5
