"""Observers against hand-computed ranges and brute-force references, at every granularity."""
import pytest
import torch

from mmvitq.ops import fake_quant_per_channel, fake_quant_per_head, fake_quant_per_tensor, quant_range
from mmvitq.quantizers import (EMAObserver, MinMaxObserver, MSEObserver, PercentileObserver, UniformQuantizer,
                               qparams_from_range)

X = torch.tensor([[-1., 2.], [0.5, 4.]])
X_HEADS = torch.tensor([[-1., 2., 0.5, 4.], [3., -2., 1., -0.5]])  # heads: columns {0, 1} and {2, 3}

# (granularity, constructor kwargs, input, symmetric scales, asymmetric scales, asymmetric zero points), 4 bits:
# symmetric scale = max(|lo|, |hi|) / 7; asymmetric scale = (hi - lo) / 15 and zero point -round(lo / scale),
# with lo <= 0 <= hi.
MINMAX_CASES = [
    ('tensor', {}, X, [4 / 7], [5 / 15], [3]),
    ('channel', dict(num_channels=2), X, [1 / 7, 4 / 7], [1.5 / 15, 4 / 15], [10, 0]),
    ('channel', dict(num_channels=2, ch_axis=0), X, [2 / 7, 4 / 7], [3 / 15, 4 / 15], [5, 0]),
    ('head', dict(num_heads=2), X_HEADS, [3 / 7, 4 / 7], [5 / 15, 4.5 / 15], [6, 2]),
]


def expected_output(q, x):
    """The op of the quantizer's granularity, called directly with its frozen scale and zero point."""
    args = dict(quant_min=q.quant_min, quant_max=q.quant_max)
    if q.granularity == 'tensor':
        return fake_quant_per_tensor(x, q.scale, q.zero_point, **args)
    if q.granularity == 'channel':
        return fake_quant_per_channel(x, q.scale, q.zero_point, axis=q.ch_axis, **args)
    return fake_quant_per_head(x, q.scale, q.zero_point, num_heads=q.num_heads, axis=q.ch_axis, **args)


@pytest.mark.parametrize('granularity,kwargs,x,sym_scale,asym_scale,asym_zero', MINMAX_CASES)
@pytest.mark.parametrize('symmetric', (True, False))
def test_minmax_by_hand(granularity, kwargs, x, sym_scale, asym_scale, asym_zero, symmetric):
    q = UniformQuantizer(bits=4, symmetric=symmetric, granularity=granularity, **kwargs)
    out = q(x)
    scale, zero = (sym_scale, [0] * len(sym_scale)) if symmetric else (asym_scale, asym_zero)
    torch.testing.assert_close(q.scale, torch.tensor(scale))
    torch.testing.assert_close(q.zero_point, torch.tensor(zero, dtype=torch.float32), rtol=0, atol=0)
    torch.testing.assert_close(out, expected_output(q, x), rtol=0, atol=0)


def test_minmax_runs_over_batches():
    obs = MinMaxObserver(-8, 7, True)
    obs.update(torch.tensor([[-1., 2.], [0., 1.]]))
    obs.update(torch.tensor([[0., 3.], [-5., 0.5]]))
    lo, hi = obs.min_max()
    assert lo.tolist() == [-1., -5.] and hi.tolist() == [3., 1.]
    assert obs.num_batches == 2


def test_qparams_from_range_by_hand():
    scale, zero = qparams_from_range(torch.tensor([-1., 0.5, -3.]), torch.tensor([4., 2., -1.]), 0, 15, False)
    torch.testing.assert_close(scale, torch.tensor([5 / 15, 2 / 15, 3 / 15]))  # the range always includes 0
    assert zero.tolist() == [3., 0., 15.]
    scale, zero = qparams_from_range(torch.tensor([-1., 0.]), torch.tensor([0.5, 0.]), -8, 7, True)
    torch.testing.assert_close(scale, torch.tensor([1 / 7, 1e-8]))  # an all-zero range gets the minimum scale
    assert zero.tolist() == [0., 0.]


def test_ema_known_sequence():
    obs = EMAObserver(-8, 7, True, momentum=0.25)
    # (batch min, batch max) -> running (min, max), stat += 0.25 * (batch - stat)
    steps = [((-4., 8.), (-4., 8.)), ((0., 4.), (-3., 7.)), ((-7., 11.), (-4., 8.))]
    for (bmin, bmax), expected in steps:
        obs.update(torch.tensor([[bmin, (bmin + bmax) / 2, bmax]]))
        assert (obs.lo.item(), obs.hi.item()) == expected
    torch.testing.assert_close(obs.qparams()[0], torch.tensor([8 / 7]))


def test_ema_per_channel_through_quantizer():
    q = UniformQuantizer(bits=4, granularity='channel', num_channels=2, ch_axis=0, observer='ema',
                         observer_kwargs=dict(momentum=0.5))
    q.start_observing()
    q(torch.tensor([[-2., 2.], [0., 8.]]))
    q(torch.tensor([[-4., 6.], [0., 0.]]))
    q.stop_observing()
    torch.testing.assert_close(q.scale, torch.tensor([4 / 7, 4 / 7]))  # row 0: max(3, 4); row 1: 8 -> 4


def test_percentile_on_arange():
    obs = PercentileObserver(-8, 7, True, percentile=99.0)
    obs.update(torch.stack([torch.arange(101.), torch.arange(101.) - 100]))  # rows 0..100 and -100..0
    obs.update(torch.stack([torch.arange(101.) * 2, torch.arange(101.) - 100]))
    lo, hi = obs.min_max()
    # percentiles of 0..100 are exact: 1st = 1, 99th = 99; batch 2 doubles row 0; averaged over batches.
    torch.testing.assert_close(lo, torch.tensor([(1. + 2.) / 2, -99.]))
    torch.testing.assert_close(hi, torch.tensor([(99. + 198.) / 2, -1.]))


def test_percentile_default_and_interpolation_match_quantile():
    x = torch.randn(3, 1000, generator=torch.Generator().manual_seed(0))
    q = UniformQuantizer(bits=4, symmetric=False, granularity='channel', num_channels=3, ch_axis=0,
                         observer='percentile')
    q.start_observing()
    q(x)
    lo, hi = q.observer.min_max()
    torch.testing.assert_close(lo, torch.quantile(x, 1e-4, dim=1))
    torch.testing.assert_close(hi, torch.quantile(x, 0.9999, dim=1))


def test_percentile_per_head():
    q = UniformQuantizer(bits=4, symmetric=False, granularity='head', num_heads=2, ch_axis=-1,
                         observer='percentile', observer_kwargs=dict(percentile=90.0))
    q.start_observing()
    q(torch.arange(202.).reshape(101, 2))  # column j holds the even (j=0) / odd (j=1) numbers
    lo, hi = q.observer.min_max()
    torch.testing.assert_close(lo, torch.tensor([20., 21.]))  # 10th percentile of 0, 2, .., 200 and 1, 3, .., 201
    torch.testing.assert_close(hi, torch.tensor([180., 181.]))


def test_percentile_beyond_quantile_size_limit():
    obs = PercentileObserver(-8, 7, True)
    n = 2**24 + 1
    obs.update(torch.arange(n, dtype=torch.float32)[None])
    lo, hi = obs.min_max()
    assert abs(lo.item() - 1e-4 * (n - 1)) < 1e-2
    assert abs(hi.item() - 0.9999 * (n - 1)) <= 1


def brute_force_mse(batches, rows_of, qmin, qmax, symmetric, num_candidates):
    """Scale and zero point of the best clipping ratio per row, by explicit loops over rows and candidates."""
    scales, zeros = [], []
    for c in range(len(rows_of(batches[0]))):
        errors = [0.0] * num_candidates
        lo = hi = None
        for batch in batches:
            r = rows_of(batch)[c].double()
            lo = r.min().item() if lo is None else min(lo, r.min().item())
            hi = r.max().item() if hi is None else max(hi, r.max().item())
            for k in range(num_candidates):
                s, z = hand_qparams(lo * (k + 1) / num_candidates, hi * (k + 1) / num_candidates, qmin, qmax,
                                    symmetric)
                fq = torch.fake_quantize_per_tensor_affine(r.float(), s, z, qmin, qmax).double()
                errors[k] += ((fq - r)**2).sum().item()
        best = (errors.index(min(errors)) + 1) / num_candidates
        s, z = hand_qparams(lo * best, hi * best, qmin, qmax, symmetric)
        scales.append(s)
        zeros.append(z)
    return torch.tensor(scales, dtype=torch.float32), torch.tensor(zeros, dtype=torch.float32)


def hand_qparams(lo, hi, qmin, qmax, symmetric):
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    if symmetric:
        return max(-lo, hi) / qmax, 0
    s = (hi - lo) / (qmax - qmin)
    return s, int(min(max(qmin - round(lo / s), qmin), qmax))


MSE_LAYOUTS = [  # granularity, kwargs, rows of a [B, N, 6] batch
    ('tensor', {}, lambda x: [x.flatten()]),
    ('channel', dict(num_channels=6), lambda x: [x[..., c].flatten() for c in range(6)]),
    ('head', dict(num_heads=3), lambda x: [x[..., 2 * h:2 * h + 2].flatten() for h in range(3)]),
]


@pytest.mark.parametrize('granularity,kwargs,rows_of', MSE_LAYOUTS)
@pytest.mark.parametrize('symmetric', (True, False))
def test_mse_matches_brute_force(granularity, kwargs, rows_of, symmetric):
    g = torch.Generator().manual_seed(0)
    batches = [torch.randn(2, 16, 6, generator=g) * torch.tensor([1., 2., 3., 1., .5, 4.]) + 0.5 for _ in range(2)]
    batches[1][0, 0, 1] = 12.  # an outlier the MSE search should clip
    q = UniformQuantizer(bits=3, symmetric=symmetric, granularity=granularity, observer='mse',
                         observer_kwargs=dict(num_candidates=20), **kwargs)
    q.start_observing()
    for batch in batches:
        q(batch)
    q.stop_observing()
    scale, zero = brute_force_mse(batches, rows_of, q.quant_min, q.quant_max, symmetric, 20)
    torch.testing.assert_close(q.scale, scale)
    torch.testing.assert_close(q.zero_point, zero, rtol=0, atol=0)
    assert (q.scale < brute_force_mse(batches, rows_of, *quant_range(3, symmetric), symmetric, 1)[0]).any()


def test_mse_default_candidates():
    obs = MSEObserver(-8, 7, True)
    torch.testing.assert_close(obs.ratios, torch.linspace(0.01, 1, 100))
    obs.update(torch.tensor([[0., 1., 2., 3., 4., 5., 6., 7.]]))  # on the grid of scale 1: no clipping wins
    torch.testing.assert_close(obs.qparams()[0], torch.tensor([1.]))


def test_a_registered_observer_serves_uniform_and_lsq_quantizers():
    """An observer registered by name in OBSERVERS is a UniformQuantizer's `observer` and an LSQQuantizer's `init`:
    here one that clips at 1.0 whatever it sees gives scale 1/7 at 4 bits (hand-computed)."""
    from mmvitq.quantizers import OBSERVERS, LSQQuantizer

    @OBSERVERS.register_module(name='test_clip_at_one')
    class ClipAtOne(MinMaxObserver):
        def min_max(self):
            lo, hi = super().min_max()
            return torch.full_like(lo, -1.0), torch.full_like(hi, 1.0)

    try:
        for q in (UniformQuantizer(bits=4, observer='test_clip_at_one'), LSQQuantizer(bits=4, init='test_clip_at_one')):
            q.calibrate(torch.tensor([-5.0, 3.0, 0.2]))
            torch.testing.assert_close(q.scale.detach().reshape(()), torch.tensor(1 / 7))
    finally:
        OBSERVERS.module_dict.pop('test_clip_at_one')


def test_calibrate_from_statistics_at_another_width_equals_calibrating_at_it():
    """calibrate_from maps statistics observed at 8 bits onto a 4-bit grid exactly as observing at 4 bits does."""
    x = torch.randn(64, 16, generator=torch.Generator().manual_seed(0))
    at8 = UniformQuantizer(bits=8, granularity='channel', num_channels=16, observer='percentile')
    at8.start_observing()
    at8.observe(x)
    statistics = at8.observer
    at4 = UniformQuantizer(bits=4, granularity='channel', num_channels=16, observer='percentile')
    at4.calibrate_from(statistics)
    direct = UniformQuantizer(bits=4, granularity='channel', num_channels=16, observer='percentile')
    direct.calibrate(x)
    assert bool(at4.calibrated)
    torch.testing.assert_close(at4.scale, direct.scale)
    torch.testing.assert_close(at4.zero_point, direct.zero_point)
    torch.testing.assert_close(at4(x), direct(x))
