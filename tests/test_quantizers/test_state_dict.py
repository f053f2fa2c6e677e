"""state_dict round trip: a fresh quantizer loaded with a calibrated one's state quantizes identically."""
import pytest
import torch

from mmvitq.quantizers import Log2Quantizer, LSQQuantizer, UniformQuantizer

FACTORIES = {
    'uniform-tensor': lambda: UniformQuantizer(bits=4),
    'uniform-channel-asym': lambda: UniformQuantizer(bits=3, symmetric=False, granularity='channel', num_channels=8),
    'uniform-head-ema': lambda: UniformQuantizer(bits=4, granularity='head', num_heads=2, observer='ema'),
    'uniform-percentile': lambda: UniformQuantizer(bits=4, observer='percentile'),
    'uniform-mse-channel0': lambda: UniformQuantizer(granularity='channel', ch_axis=0, num_channels=2,
                                                     observer='mse'),
    'uniform-token': lambda: UniformQuantizer(bits=4, granularity='token'),
    'lsq': lambda: LSQQuantizer(bits=4),
    'lsq-plus-head': lambda: LSQQuantizer(bits=3, symmetric=False, learnable_offset=True, granularity='head',
                                          num_heads=4, init='mse', init_kwargs=dict(num_candidates=10)),
    'log2': lambda: Log2Quantizer(bits=4),
    'log-sqrt2': lambda: Log2Quantizer(bits=3, base='sqrt2'),
}


@pytest.mark.parametrize('name', FACTORIES)
def test_round_trip(name):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 5, 8, generator=g) if name.startswith('log') else torch.randn(2, 5, 8, generator=g)
    q = FACTORIES[name]()
    q.set_bits(2 if name.startswith('uniform-channel') else q.bits.item())  # restored too, not reconstructed
    q(x)
    if isinstance(q, LSQQuantizer):  # a trained scale, not one an observer would find again
        q.scale.data.mul_(0.7)
    state = q.state_dict()
    assert set(state) == {'scale', 'zero_point', 'bits', 'calibrated'}

    fresh = FACTORIES[name]()
    fresh.load_state_dict(state)
    for key, value in fresh.state_dict().items():
        assert value.dtype == state[key].dtype and torch.equal(value, state[key]), key
    assert fresh.calibrated and (fresh.quant_min, fresh.quant_max) == (q.quant_min, q.quant_max)
    y = 3 * x  # lazy init on this batch would give another range
    assert torch.equal(fresh(y), q(y))
