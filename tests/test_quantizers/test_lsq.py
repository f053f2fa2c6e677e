"""LSQQuantizer: gradients against torch's learnable fake-quant ops (grad factor included) and initialisation."""
import math

import pytest
import torch

from mmvitq.quantizers import LSQQuantizer, UniformQuantizer, calibration


def rand(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)) * 2


def lsq_grads(q, x, dy):
    x = x.clone().requires_grad_()
    out = q(x)
    out.backward(dy)
    return out.detach(), x.grad, q.scale.grad, q.zero_point.grad


def torch_grads(fn, x, scale, zero_point, dy):
    x, s, z = (t.detach().clone().requires_grad_() for t in (x, scale, zero_point))
    out = fn(x, s, z)
    out.backward(dy)
    return out.detach(), x.grad, s.grad, z.grad


def check_close(ours, theirs, learnable_offset):
    torch.testing.assert_close(ours[0], theirs[0], rtol=0, atol=0)
    torch.testing.assert_close(ours[1], theirs[1], rtol=0, atol=0)
    torch.testing.assert_close(ours[2], theirs[2], rtol=1e-4, atol=1e-6)
    if learnable_offset:
        torch.testing.assert_close(ours[3], theirs[3], rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize('symmetric,learnable_offset', ((True, False), (False, True)))
def test_per_tensor_grads_match_torch(symmetric, learnable_offset):
    x, dy = rand(4, 6, 8), rand(4, 6, 8, seed=1)
    q = LSQQuantizer(bits=4, symmetric=symmetric, learnable_offset=learnable_offset, init='minmax')
    with torch.no_grad():
        q(x)  # lazy init
    q.scale.data.fill_(0.3)  # clips some values: both gradient branches are exercised
    q.zero_point.data.fill_(0 if symmetric else 7)
    factor = 1 / math.sqrt(x.numel() * q.quant_max)
    assert q.grad_factor(x) == pytest.approx(factor)
    theirs = torch_grads(lambda x, s, z: torch._fake_quantize_learnable_per_tensor_affine(
        x, s, z, q.quant_min, q.quant_max, factor), x, q.scale, q.zero_point, dy)
    check_close(lsq_grads(q, x, dy), theirs, learnable_offset)


@pytest.mark.parametrize('granularity,axis', (('channel', -1), ('channel', 0), ('head', -1)))
def test_per_channel_and_head_grads_match_torch(granularity, axis):
    x, dy = rand(4, 6, 8), rand(4, 6, 8, seed=1)
    count = 2 if granularity == 'head' else x.shape[axis]
    q = LSQQuantizer(bits=3, symmetric=False, learnable_offset=True, granularity=granularity, ch_axis=axis,
                     num_channels=count, num_heads=count, init='minmax')
    with torch.no_grad():
        q(x)  # lazy init
    q.scale.data.mul_(0.6)
    factor = 1 / math.sqrt(x.numel() / count * q.quant_max)
    # A head is a block of channels: torch's per-channel op over [.., heads, head_dim] is the reference.
    view = (lambda t: t.reshape(4, 6, count, -1)) if granularity == 'head' else (lambda t: t)
    torch_axis = 2 if granularity == 'head' else axis % 3
    theirs = torch_grads(lambda x, s, z: torch._fake_quantize_learnable_per_channel_affine(
        view(x), s, z, torch_axis, q.quant_min, q.quant_max, factor).reshape(x.shape), x, q.scale, q.zero_point, dy)
    check_close(lsq_grads(q, x, dy), theirs, True)


def test_lsq_init_formula_and_in_place():
    x = rand(3, 10)
    q = LSQQuantizer(bits=4, granularity='channel', ch_axis=0, num_channels=3)
    scale = q.scale
    optimizer = torch.optim.SGD(q.parameters(), lr=0.1)
    with torch.no_grad(), calibration(q):
        q(x[:, :5])
        q(x[:, 5:])
    assert q.scale is scale and isinstance(scale, torch.nn.Parameter)
    torch.testing.assert_close(q.scale.data, 2 * x.abs().mean(dim=1) / math.sqrt(7))
    assert not isinstance(q.zero_point, torch.nn.Parameter)
    before = q.scale.detach().clone()
    q(x).sum().backward()
    optimizer.step()
    assert not torch.equal(q.scale, before)  # the optimizer built before init updates the initialised scale


@pytest.mark.parametrize('init', ('minmax', 'mse', 'percentile'))
def test_observer_inits_match_uniform(init):
    x = rand(2, 7, 4)
    kwargs = dict(bits=3, symmetric=False, granularity='channel', num_channels=4)
    lsq = LSQQuantizer(learnable_offset=True, init=init, **kwargs)
    uniform = UniformQuantizer(observer=init, **kwargs)
    lsq(x)
    uniform(x)
    assert torch.equal(lsq.scale.data, uniform.scale) and torch.equal(lsq.zero_point.data, uniform.zero_point)
