"""Fake-quant kernels against torch's own fake-quant ops and against our PyTorch reference."""
import math
import warnings

import pytest
import torch

from mmvitq.ops import (backend, fake_quant, fake_quant_per_channel, fake_quant_per_head, fake_quant_per_tensor,
                        fake_quant_per_token, quant_range, reference)

BITS = (2, 3, 4, 8)
DTYPES = (torch.float32, torch.bfloat16, torch.float16)
# Shapes of [B, N, C] activations and [out, in] weights, small enough for a fast suite.
ACT = (3, 17, 24)
WEIGHT = (24, 40)


def ranges(bits):
    yield quant_range(bits, symmetric=True)
    yield quant_range(bits, symmetric=False)


def rand(shape, dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(shape, generator=g) * 2).to(dtype)


def scale_for(x, qmin, qmax, channels=1, dim=None):
    """A scale that clips some values, so both branches of the gradient are exercised."""
    amax = x.float().abs().amax() if dim is None else x.float().abs().amax(dim=dim)
    return (0.7 * amax / ((qmax - qmin) / 2)).reshape(channels).clone()


def zero_for(qmin, qmax, channels=1):
    z = float((qmin + qmax + 1) // 2) if qmin == 0 else 0.0
    return torch.full((channels, ), z) + torch.arange(channels) % 2


def test_backend_is_compiled():
    assert backend('cpu') == 'compiled'


@pytest.mark.parametrize('bits', BITS)
def test_per_tensor_matches_torch(bits):
    x = rand(ACT)
    for qmin, qmax in ranges(bits):
        s = scale_for(x, qmin, qmax)
        z = zero_for(qmin, qmax)
        ours = fake_quant_per_tensor(x, s, z, qmin, qmax)
        theirs = torch.fake_quantize_per_tensor_affine(x, float(s), int(z), qmin, qmax)
        torch.testing.assert_close(ours, theirs, rtol=0, atol=0)


@pytest.mark.parametrize('bits', BITS)
@pytest.mark.parametrize('axis', (0, 1, -1))
def test_per_channel_matches_torch(bits, axis):
    x = rand(ACT)
    dims = tuple(d for d in range(3) if d != axis % 3)
    for qmin, qmax in ranges(bits):
        c = x.shape[axis]
        s = scale_for(x, qmin, qmax, c, dims)
        z = zero_for(qmin, qmax, c)
        ours = fake_quant_per_channel(x, s, z, axis, qmin, qmax)
        theirs = torch.fake_quantize_per_channel_affine(x, s, z.int(), axis % 3, qmin, qmax)
        torch.testing.assert_close(ours, theirs, rtol=0, atol=0)


def grads(fn, x, s, z):
    x, s, z = (t.clone().requires_grad_() for t in (x, s, z))
    out = fn(x, s, z)
    dy = rand(out.shape, seed=1).to(out.device)
    out.backward(dy)
    return out.detach(), x.grad, s.grad, z.grad


@pytest.mark.parametrize('bits', BITS)
def test_learnable_per_tensor_matches_torch(bits):
    x = rand(ACT)
    for qmin, qmax in ranges(bits):
        s, z = scale_for(x, qmin, qmax), zero_for(qmin, qmax)
        factor = 1.0 / math.sqrt(x.numel() * qmax)
        ours = grads(lambda x, s, z: fake_quant_per_tensor(x, s, z, qmin, qmax, factor), x, s, z)
        theirs = grads(lambda x, s, z: torch._fake_quantize_learnable_per_tensor_affine(x, s, z, qmin, qmax, factor),
                       x, s, z)
        torch.testing.assert_close(ours[0], theirs[0], rtol=0, atol=0)
        torch.testing.assert_close(ours[1], theirs[1], rtol=0, atol=0)
        torch.testing.assert_close(ours[2], theirs[2], rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(ours[3], theirs[3], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize('bits', BITS)
@pytest.mark.parametrize('shape,axis', ((WEIGHT, 0), (ACT, -1), (ACT, 1)))
def test_learnable_per_channel_matches_torch(bits, shape, axis):
    x = rand(shape)
    dims = tuple(d for d in range(x.dim()) if d != axis % x.dim())
    for qmin, qmax in ranges(bits):
        c = x.shape[axis]
        s, z = scale_for(x, qmin, qmax, c, dims), zero_for(qmin, qmax, c)
        factor = 1.0 / math.sqrt(x.numel() / c * qmax)
        ours = grads(lambda x, s, z: fake_quant_per_channel(x, s, z, axis, qmin, qmax, factor), x, s, z)
        theirs = grads(lambda x, s, z: torch._fake_quantize_learnable_per_channel_affine(
            x, s, z, axis % x.dim(), qmin, qmax, factor), x, s, z)
        torch.testing.assert_close(ours[0], theirs[0], rtol=0, atol=0)
        torch.testing.assert_close(ours[1], theirs[1], rtol=0, atol=0)
        torch.testing.assert_close(ours[2], theirs[2], rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(ours[3], theirs[3], rtol=1e-4, atol=1e-5)


def granularities(x, qmin, qmax):
    """(name, kernel call, reference call) for every granularity on a [B, N, C] input."""
    c = x.shape[-1]
    s_t, z_t = scale_for(x, qmin, qmax), zero_for(qmin, qmax)
    s_c, z_c = scale_for(x, qmin, qmax, c, (0, 1)), zero_for(qmin, qmax, c)
    s_0, z_0 = scale_for(x, qmin, qmax, x.shape[0], (1, 2)), zero_for(qmin, qmax, x.shape[0])
    heads = 4
    s_h = scale_for(x.reshape(*x.shape[:2], heads, -1), qmin, qmax, heads, (0, 1, 3))
    z_h = zero_for(qmin, qmax, heads)
    n = x.numel()
    yield ('tensor', (s_t, z_t), lambda x, s, z: fake_quant_per_tensor(x, s, z, qmin, qmax, 0.5),
           lambda x, s, z: reference.fake_quant(x, s, z, 1, n, qmin, qmax, 0.5))
    yield ('channel-last', (s_c, z_c), lambda x, s, z: fake_quant_per_channel(x, s, z, -1, qmin, qmax, 0.5),
           lambda x, s, z: reference.fake_quant(x, s, z, c, 1, qmin, qmax, 0.5))
    yield ('channel-0', (s_0, z_0), lambda x, s, z: fake_quant_per_channel(x, s, z, 0, qmin, qmax, 0.5),
           lambda x, s, z: reference.fake_quant(x, s, z, x.shape[0], n // x.shape[0], qmin, qmax, 0.5))
    yield ('head', (s_h, z_h), lambda x, s, z: fake_quant_per_head(x, s, z, heads, -1, qmin, qmax, 0.5),
           lambda x, s, z: reference.fake_quant(x, s, z, heads, c // heads, qmin, qmax, 0.5))


@pytest.mark.parametrize('bits', BITS)
@pytest.mark.parametrize('dtype', DTYPES)
def test_kernels_match_reference(bits, dtype):
    x = rand(ACT, dtype)
    for qmin, qmax in ranges(bits):
        for name, (s, z), ours_fn, ref_fn in granularities(x, qmin, qmax):
            ours, theirs = grads(ours_fn, x, s, z), grads(ref_fn, x, s, z)
            torch.testing.assert_close(ours[0], theirs[0], rtol=0, atol=0, msg=name)
            torch.testing.assert_close(ours[1], theirs[1], msg=name)
            torch.testing.assert_close(ours[2], theirs[2], rtol=1e-4, atol=1e-4, msg=name)
            torch.testing.assert_close(ours[3], theirs[3], rtol=1e-4, atol=1e-4, msg=name)


@pytest.mark.parametrize('bits', BITS)
@pytest.mark.parametrize('dtype', DTYPES)
@pytest.mark.parametrize('symmetric', (True, False))
def test_per_token_matches_reference(bits, dtype, symmetric):
    x = rand(ACT, dtype).requires_grad_()
    qmin, qmax = quant_range(bits, symmetric)
    ours = fake_quant_per_token(x, qmin, qmax, symmetric)
    theirs = reference.fake_quant_per_token(x, qmin, qmax, symmetric)
    torch.testing.assert_close(ours, theirs, rtol=0, atol=0)
    dy = rand(ACT, dtype, seed=3)
    (gx_ours, ) = torch.autograd.grad(ours, x, dy)
    (gx_ref, ) = torch.autograd.grad(theirs, x, dy)
    torch.testing.assert_close(gx_ours, gx_ref)


def test_per_token_scale_is_row_max():
    """Hand-computed: symmetric 4-bit, row [-3.5, 1, 0.5] has scale 3.5 / 7 = 0.5."""
    x = torch.tensor([[-3.5, 1.0, 0.5], [0.0, 0.0, 0.0]])
    out = fake_quant_per_token(x, -8, 7, True)
    torch.testing.assert_close(out, torch.tensor([[-3.5, 1.0, 0.5], [0.0, 0.0, 0.0]]))
    out = fake_quant_per_token(torch.tensor([[0.0, 0.2, 0.9]]), -8, 7, True)
    torch.testing.assert_close(out, torch.tensor([[0.0, 0.2571428716, 0.9]]))  # 0.9 / 7 * round(1.5556) = 2


def test_reference_gradcheck(monkeypatch):
    """The reference's LSQ gradients are exact derivatives once the rounding step is smoothed away."""
    monkeypatch.setattr(reference, '_round', lambda t: t)
    g = torch.Generator().manual_seed(0)
    x = (torch.randn(2, 3, 5, generator=g, dtype=torch.float64) * 3).requires_grad_()
    s = torch.tensor([0.4, 0.3, 0.5], dtype=torch.float64, requires_grad=True)
    z = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64, requires_grad=True)
    # Keep inputs away from the clamp kinks, where the derivative is undefined.
    with torch.no_grad():
        v = x / s.reshape(1, 3, 1) + 2
        x[((v - 0).abs() < 0.05) | ((v - 15).abs() < 0.05)] += 0.2
    assert torch.autograd.gradcheck(lambda x, s, z: reference.fake_quant(x, s, z, 3, 5, 0, 15), (x, s, z))


def test_zero_range_tensor():
    for x in (torch.zeros(4, 8), torch.full((4, 8), 0.3)):
        s = torch.zeros(1, requires_grad=True)
        out = fake_quant_per_tensor(x, s, None, -8, 7)
        out.sum().backward()
        assert torch.isfinite(out).all() and torch.isfinite(s.grad).all()
        for sym in (True, False):
            qmin, qmax = quant_range(4, sym)
            torch.testing.assert_close(fake_quant_per_token(x, qmin, qmax, sym), x)


def test_nan_and_inf_never_reach_a_scale():
    x = rand((4, 16))
    x[0, 0], x[1, 1], x[2, 2] = float('nan'), float('inf'), -float('inf')
    for fn, s, z in ((lambda x, s, z: fake_quant_per_tensor(x, s, z, 0, 15), torch.tensor([0.2]), torch.tensor([8.])),
                     (lambda x, s, z: fake_quant_per_channel(x, s, z, 0, 0, 15), torch.full((4, ), 0.2),
                      torch.full((4, ), 8.))):
        out, gx, gs, gz = grads(fn, x, s, z)
        assert torch.isnan(out[0, 0]) and torch.isfinite(out[1:].flatten()[1:]).all()
        assert out[1, 1] == (15 - 8) * 0.2 and out[2, 2] == (0 - 8) * 0.2
        assert torch.isfinite(gs).all() and torch.isfinite(gz).all() and gx[0, 0] == 0
        ref = grads(lambda x, s, z: reference.fake_quant(x, s, z, s.numel(), 64 // s.numel(), 0, 15), x, s, z)
        torch.testing.assert_close(out, ref[0], equal_nan=True)
        torch.testing.assert_close(gs, ref[2]) and torch.testing.assert_close(gz, ref[3])
    out = fake_quant_per_token(x, -8, 7)
    finite = torch.where(torch.isfinite(x), x, 0)
    expected = torch.fake_quantize_per_channel_affine(x, finite.abs().amax(1) / 7, torch.zeros(4, dtype=torch.int),
                                                      0, -8, 7)
    mask = torch.isfinite(x)
    torch.testing.assert_close(out[mask], expected[mask])
    assert torch.isnan(out[0, 0])


def test_empty_tensor():
    x = torch.empty(0, 8, requires_grad=True)
    s = torch.ones(1, requires_grad=True)
    out = fake_quant_per_tensor(x, s, None, -8, 7)
    out.sum().backward()
    assert out.shape == (0, 8) and s.grad.item() == 0
    assert fake_quant_per_token(torch.empty(0, 8), -8, 7).shape == (0, 8)
    assert fake_quant_per_channel(torch.empty(0, 8), torch.ones(8), None, 1, -8, 7).shape == (0, 8)


def test_non_contiguous_input():
    x = rand((16, 24)).t()
    assert not x.is_contiguous()
    s = scale_for(x, -8, 7, 24, 1)
    for axis in (0, 1):
        c = x.shape[axis]
        ss = scale_for(x, -8, 7, c, 1 - axis)
        torch.testing.assert_close(fake_quant_per_channel(x, ss, None, axis, -8, 7),
                                   fake_quant_per_channel(x.contiguous(), ss, None, axis, -8, 7), rtol=0, atol=0)
    torch.testing.assert_close(fake_quant_per_token(x, -8, 7), fake_quant_per_token(x.contiguous(), -8, 7))
    assert s.numel() == 24


def test_non_positive_scale_is_clamped():
    x = rand((4, 8))
    for bad in (0.0, -0.5):
        s = torch.tensor([bad], requires_grad=True)
        out = fake_quant_per_tensor(x, s, None, -8, 7)
        torch.testing.assert_close(out, fake_quant_per_tensor(x, torch.tensor([reference.MIN_SCALE]), None, -8, 7))
        out.sum().backward()
        assert torch.isfinite(s.grad).all() and s.grad.abs().sum() > 0  # the gradient passes through the clamp


def test_bad_arguments():
    x = rand((4, 8))
    with pytest.raises(ValueError, match='quant_min'):
        fake_quant_per_tensor(x, torch.ones(1), None, 7, -8)
    with pytest.raises(ValueError, match='scale has 3 elements, expected 8'):
        fake_quant_per_channel(x, torch.ones(3), None, 1)
    with pytest.raises(ValueError, match='num_heads=3'):
        fake_quant_per_head(x, torch.ones(3), None, 3)
    with pytest.raises(ValueError, match='axis 2'):
        fake_quant_per_channel(x, torch.ones(8), None, 2)


def test_gradients_do_not_depend_on_thread_count():
    x, s = rand((64, 197, 48)), torch.tensor([0.1])
    results = []
    threads = torch.get_num_threads()
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            results.append(grads(lambda x, s, z: fake_quant_per_tensor(x, s, z, -8, 7), x, s, torch.zeros(1)))
    finally:
        torch.set_num_threads(threads)
    for a, b in zip(*results):
        assert torch.equal(a, b)


def test_fallback_warns_once_and_matches(monkeypatch):
    x, s = rand(ACT), torch.tensor([0.1])
    expected = fake_quant_per_tensor(x, s, None, -8, 7)
    monkeypatch.setattr(fake_quant, '_ext', None)
    monkeypatch.setattr(fake_quant, '_warned', False)
    assert backend() == 'reference'
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        out = fake_quant_per_tensor(x, s, None, -8, 7)
        fake_quant_per_tensor(x, s, None, -8, 7)
    assert len(caught) == 1 and 'falls back' in str(caught[0].message)
    torch.testing.assert_close(out, expected, rtol=0, atol=0)
