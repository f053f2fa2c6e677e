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
    fresh.accept_state_bits = True  # as a mixed-precision search sets: the set_bits width comes from the state
    fresh.load_state_dict(state)
    for key, value in fresh.state_dict().items():
        assert value.dtype == state[key].dtype and torch.equal(value, state[key]), key
    assert fresh.calibrated and (fresh.quant_min, fresh.quant_max) == (q.quant_min, q.quant_max)
    y = 3 * x  # lazy init on this batch would give another range
    assert torch.equal(fresh(y), q(y))


def test_state_that_disagrees_with_the_built_quantizer_is_refused():
    """Other bits or another number of scales: an error naming the layer, not a silent 1.0 scale or stale bits."""
    q = UniformQuantizer(bits=4, granularity='channel', num_channels=8)
    q(torch.randn(3, 8))
    state = {f'blocks.0.qkv.weight_quant.{k}': v for k, v in q.state_dict().items()}
    model = torch.nn.Module()
    model.blocks = torch.nn.ModuleList([torch.nn.Module()])
    model.blocks[0].qkv = torch.nn.Module()
    model.blocks[0].qkv.weight_quant = UniformQuantizer(bits=8, granularity='channel', num_channels=8)
    with pytest.raises(ValueError, match=r'blocks\.0\.qkv\.weight_quant holds a 4-bit quantizer, the config builds '
                                         r'it with 8 bits'):
        model.load_state_dict(state, strict=False)
    model.blocks[0].qkv.weight_quant = UniformQuantizer(bits=4)  # per tensor: one scale, not 8
    with pytest.raises(ValueError, match=r'blocks\.0\.qkv\.weight_quant\.scale has shape \(8,\), the config builds '
                                         r'\(1,\)'):
        model.load_state_dict(state, strict=False)
    model.blocks[0].qkv.weight_quant = UniformQuantizer(bits=4, granularity='channel', num_channels=8)
    with pytest.raises(ValueError, match='marked calibrated but holds no scale'):
        model.load_state_dict({k: v for k, v in state.items() if not k.endswith('.scale')}, strict=False)
    model.load_state_dict(state, strict=False)  # the matching quantizer loads
    assert bool(model.blocks[0].qkv.weight_quant.calibrated)
