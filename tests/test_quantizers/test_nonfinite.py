"""Calibration never yields a non-finite scale: observers and inits on NaN, +-inf, all-NaN, empty and constant
inputs against the same statistics of the finite values alone; the op agrees with its reference for every scale."""
import warnings

import pytest
import torch

from mmvitq.ops import fake_quant_per_channel, fake_quant_per_tensor, fake_quant_per_token, reference
from mmvitq.quantizers import CalibrationError, Log2Quantizer, LSQQuantizer, UniformQuantizer, calibration

OBSERVED = {
    'minmax': lambda **kw: UniformQuantizer(bits=4, symmetric=False, **kw),
    'ema': lambda **kw: UniformQuantizer(bits=4, observer='ema', **kw),
    'percentile': lambda **kw: UniformQuantizer(bits=4, observer='percentile', observer_kwargs=dict(percentile=90.),
                                                **kw),
    'mse': lambda **kw: UniformQuantizer(bits=4, observer='mse', observer_kwargs=dict(num_candidates=20), **kw),
    'lsq': lambda **kw: LSQQuantizer(bits=4, init='lsq', **kw),
    'lsq-mse': lambda **kw: LSQQuantizer(bits=3, init='mse', init_kwargs=dict(num_candidates=20), **kw),
}


def batches(seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(6, 8, generator=g) * (i + 1) for i in range(3)]


def spoiled(batch: torch.Tensor, seed: int) -> torch.Tensor:
    """`batch` with NaN, +inf and -inf written over some values (different in each row)."""
    out = batch.clone()
    g = torch.Generator().manual_seed(seed)
    for row, value in zip(range(out.shape[0]), (float('nan'), float('inf'), -float('inf')) * 2):
        out[row, torch.randint(0, out.shape[1], (2, ), generator=g)] = value
    return out


def calibrated(make, inputs, **kw):
    q = make(**kw)
    q.start_observing()
    for x in inputs:
        q(x)
    q.stop_observing()
    return q


@pytest.mark.parametrize('name', OBSERVED)
def test_non_finite_values_are_left_out_per_tensor(name):
    """Per tensor: NaN/inf left out gives exactly the range of the finite values alone (brute force: drop them)."""
    clean = batches()
    dirty = [spoiled(x, i) for i, x in enumerate(clean)]
    reference_q = calibrated(OBSERVED[name], [x[torch.isfinite(x)] for x in dirty])
    q = calibrated(OBSERVED[name], dirty)
    assert torch.isfinite(q.scale).all() and torch.isfinite(q.zero_point).all()
    torch.testing.assert_close(q.scale, reference_q.scale)
    torch.testing.assert_close(q.zero_point, reference_q.zero_point)


@pytest.mark.parametrize('name', OBSERVED)
def test_non_finite_values_are_left_out_per_channel(name):
    """Per channel, rows with different numbers of finite values: each scale as if calibrated on its row alone."""
    dirty = [spoiled(x, i) for i, x in enumerate(batches(1))]
    q = calibrated(OBSERVED[name], dirty, granularity='channel', ch_axis=0, num_channels=6)
    for row in range(6):
        alone = calibrated(OBSERVED[name], [x[row][torch.isfinite(x[row])] for x in dirty])
        torch.testing.assert_close(q.scale[row:row + 1], alone.scale)
        torch.testing.assert_close(q.zero_point[row:row + 1], alone.zero_point)


def test_nan_batch_does_not_erase_the_clean_batches_before_it():
    """The measured failure: one NaN in an EMA/min-max batch collapsed the scale to 1e-8."""
    clean = batches(2)
    for make in (OBSERVED['minmax'], OBSERVED['ema']):
        expected = calibrated(make, clean[:2])
        nan_batch = torch.full_like(clean[2], float('nan'))
        got = calibrated(make, clean[:2] + [nan_batch])
        torch.testing.assert_close(got.scale, expected.scale)
    one_inf = clean[0].clone()
    one_inf[0, 0] = float('inf')  # used to clip the whole positive side
    torch.testing.assert_close(calibrated(OBSERVED['minmax'], [one_inf]).scale,
                               calibrated(OBSERVED['minmax'], [one_inf[torch.isfinite(one_inf)]]).scale)


def test_log2_max_ignores_non_finite():
    x = torch.rand(4, 16) * 0.9
    x[0, 0], x[1, 1], x[2, 2] = float('nan'), float('inf'), -float('inf')
    q = calibrated(lambda: Log2Quantizer(bits=4), [x])
    assert float(q.scale) == pytest.approx(float(x[torch.isfinite(x)].max()))
    out = q(x)
    assert torch.isnan(out[0, 0]) and out[1, 1] == q.scale  # NaN stays NaN, +inf saturates
    assert torch.isfinite(out[torch.isfinite(x)]).all()


def test_constant_inputs_give_finite_scales():
    for make in OBSERVED.values():
        for value in (0.0, 3.0, -2.0):
            q = calibrated(make, [torch.full((4, 8), value)])
            assert torch.isfinite(q.scale).all() and (q.scale > 0).all()
            assert torch.isfinite(q(torch.randn(4, 8))).all()


def tiny_model(make):
    model = torch.nn.Sequential(torch.nn.Identity())
    model.add_module('act', make())
    return model


@pytest.mark.parametrize('name', OBSERVED)
@pytest.mark.parametrize('bad', ('all-nan', 'empty'))
def test_nothing_finite_to_calibrate_is_an_error_naming_the_path(name, bad):
    model = tiny_model(OBSERVED[name])
    x = torch.full((4, 8), float('nan')) if bad == 'all-nan' else torch.empty(0, 8)
    with pytest.raises(CalibrationError, match=r'act \(no finite value to calibrate its scale from'):
        with calibration(model):
            model(x)
    assert not model.act.calibrated and not model.act.observing


def test_non_finite_values_are_reported_once_with_their_count():
    model = torch.nn.Sequential(UniformQuantizer(bits=4), UniformQuantizer(bits=4))
    x = torch.randn(4, 8)
    x[0, :3] = float('nan')
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        with calibration(model):
            model(x)
            model(x)
    messages = [str(w.message) for w in caught]
    assert len(messages) == 1 and '2 quantizers: 0 (6 values), 1 (6 values)' in messages[0]


def test_lazy_init_skips_empty_and_refuses_all_nan():
    q = UniformQuantizer(bits=4)
    assert q(torch.empty(0, 8)).shape == (0, 8) and not q.calibrated
    with pytest.raises(CalibrationError, match='calibrating on its first batch: no finite value'):
        q(torch.full((2, 8), float('nan')))
    x = torch.randn(2, 8)
    x[0, 0] = float('inf')
    with pytest.warns(UserWarning, match='held 1 non-finite values'):
        q(x)
    assert torch.isfinite(q.scale).all()


SCALES = (float('nan'), float('inf'), -float('inf'), 0.0, -1.0, 1e-12, 1e35, 3e-3, 0.25)


@pytest.mark.parametrize('value', SCALES)
def test_op_matches_reference_for_every_scale(value):
    """Compiled op == PyTorch reference for NaN/inf/0/negative/tiny/huge scales; a finite input stays finite."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 4, 5, generator=g) * 10
    x[0, 0, 0] = 3e38  # finite, near the float32 limit
    for qmin, qmax in ((-8, 7), (0, 15), (-128, 127)):
        scale = torch.tensor([value, 0.5, value, 1.0])
        zero = torch.tensor([0.0, 3.0, float(qmin), float('nan')])
        for granularity in ('tensor', 'channel'):
            if granularity == 'tensor':
                args = (scale[:1], zero[:1], 1, x.numel())
                ours = fake_quant_per_tensor(x, scale[:1], zero[:1], qmin, qmax)
            else:
                args = (scale, zero, 4, 5)
                ours = fake_quant_per_channel(x, scale, zero, 1, qmin, qmax)
            expected = reference.fake_quant(x, *args, qmin, qmax)
            torch.testing.assert_close(ours, expected, rtol=0, atol=0)
            assert torch.isfinite(ours).all()


@pytest.mark.parametrize('value', SCALES)
def test_scale_gradient_is_finite_for_every_scale(value):
    x = torch.randn(4, 8)
    s = torch.tensor([value], requires_grad=True)
    fake_quant_per_tensor(x, s, None, -8, 7).sum().backward()
    assert torch.isfinite(s.grad).all()


def test_per_token_of_huge_finite_values_stays_finite():
    x = torch.tensor([[3e38, -3e38, 1.0], [float('inf'), 2.0, -1.0]])
    for symmetric, (qmin, qmax) in ((True, (-8, 7)), (False, (0, 15))):
        ours = fake_quant_per_token(x, qmin, qmax, symmetric)
        torch.testing.assert_close(ours, reference.fake_quant_per_token(x, qmin, qmax, symmetric), rtol=0, atol=0)
        assert torch.isfinite(ours).all()
