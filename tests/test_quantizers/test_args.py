"""Bad constructor arguments raise ValueError naming the field and its allowed values."""
import pytest

from mmvitq.quantizers import Log2Quantizer, LSQQuantizer, UniformQuantizer

GRANULARITIES = "('tensor', 'channel', 'head', 'token')"

BAD = [
    (UniformQuantizer, dict(bits=9), 'bits must be an int in 2..8, got 9'),
    (UniformQuantizer, dict(bits=1), 'bits must be an int in 2..8, got 1'),
    (UniformQuantizer, dict(bits=4.0), 'bits must be an int in 2..8, got 4.0'),
    (UniformQuantizer, dict(bits=True), 'bits must be an int in 2..8, got True'),
    (UniformQuantizer, dict(symmetric='yes'), "symmetric must be a bool (True or False), got 'yes'"),
    (UniformQuantizer, dict(granularity='row'), f"granularity must be one of {GRANULARITIES}, got 'row'"),
    (UniformQuantizer, dict(ch_axis=1.5), 'ch_axis must be an int'),
    (UniformQuantizer, dict(num_channels=0), 'num_channels must be an int >= 1, got 0'),
    (UniformQuantizer, dict(num_heads=-2), 'num_heads must be an int >= 1, got -2'),
    (UniformQuantizer, dict(observer='max'),
     "observer must be one of ('minmax', 'ema', 'percentile', 'mse', 'lsq'), got 'max'"),
    (UniformQuantizer, dict(observer='ema', observer_kwargs=dict(momentum=0)),
     'momentum must be a float in (0, 1], got 0'),
    (UniformQuantizer, dict(observer='percentile', observer_kwargs=dict(percentile=40)),
     'percentile must be a float in (50, 100], got 40'),
    (UniformQuantizer, dict(observer='mse', observer_kwargs=dict(num_candidates=0)),
     'num_candidates must be an int >= 1, got 0'),
    (LSQQuantizer, dict(init='max'), "init must be one of ('minmax', 'ema', 'percentile', 'mse', 'lsq'), got 'max'"),
    (LSQQuantizer, dict(granularity='token'), "granularity must be one of ('tensor', 'channel', 'head'), got 'token'"),
    (LSQQuantizer, dict(learnable_offset=True), 'learnable_offset=True needs symmetric=False'),
    (LSQQuantizer, dict(learnable_offset=1), 'learnable_offset must be a bool (True or False), got 1'),
    (Log2Quantizer, dict(base='e'), "base must be one of ('2', 'sqrt2'), got 'e'"),
    (Log2Quantizer, dict(bits=0), 'bits must be an int in 2..8, got 0'),
]


@pytest.mark.parametrize('cls,kwargs,message', BAD)
def test_bad_constructor_args(cls, kwargs, message):
    with pytest.raises(ValueError) as info:
        cls(**kwargs)
    assert message in str(info.value)


def test_bad_set_bits():
    q = UniformQuantizer(bits=4)
    with pytest.raises(ValueError, match=r'bits must be an int in 2\.\.8, got 16'):
        q.set_bits(16)
    assert q.bits.item() == 4
