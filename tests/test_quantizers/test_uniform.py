"""UniformQuantizer: lazy init, token granularity, bit changes, enable switch, registry."""
import pytest
import torch
from mmengine.registry import MODELS as MMENGINE_MODELS

from mmvitq.ops import fake_quant_per_token
from mmvitq.quantizers import Log2Quantizer, LSQQuantizer, UniformQuantizer
from mmvitq.registry import MODELS, QUANTIZERS


def test_lazy_init_on_first_batch():
    q = UniformQuantizer(bits=4)
    assert not q.calibrated
    x1, x2 = torch.tensor([-1., 0., 3.5]), torch.tensor([-7., 0., 14.])
    torch.testing.assert_close(q(x1), torch.tensor([-1., 0., 3.5]))  # scale 0.5: x1 is on the grid
    assert q.calibrated and q.scale.item() == 0.5
    torch.testing.assert_close(q(x2), torch.tensor([-4., 0., 3.5]))  # frozen: x2 is clipped to [-4, 3.5]
    assert q.scale.item() == 0.5


def test_token_granularity_is_dynamic_and_stateless():
    x = torch.randn(2, 5, 8, generator=torch.Generator().manual_seed(0))
    for symmetric in (True, False):
        q = UniformQuantizer(bits=4, symmetric=symmetric, granularity='token')
        assert q.scale.shape == (0, ) and q.calibrated
        expected = fake_quant_per_token(x, q.quant_min, q.quant_max, symmetric)
        torch.testing.assert_close(q(x), expected, rtol=0, atol=0)
        torch.testing.assert_close(q(3 * x), 3 * expected, rtol=1e-6, atol=1e-6)  # no frozen range
        q.start_observing()
        assert q(x) is x
        q.stop_observing()


def test_set_bits_needs_recalibration():
    q = UniformQuantizer(bits=8)
    x = torch.tensor([-2., 1., 3.5])
    q(x)
    old_scale = q.scale.clone()
    q.set_bits(4)
    assert (q.quant_min, q.quant_max) == (-8, 7) and q.bits.item() == 4 and not q.calibrated
    assert torch.equal(q.scale, old_scale)  # stale until the next batch
    q(x)
    torch.testing.assert_close(q.scale, torch.tensor([3.5 / 7]))
    q.set_bits(4)  # unchanged bits: keeps the calibration
    assert q.calibrated


def test_set_bits_on_token_applies_at_once():
    q = UniformQuantizer(bits=8, granularity='token')
    q.set_bits(2)
    x = torch.linspace(-1, 1, 9)
    assert q.calibrated
    torch.testing.assert_close(q(x), fake_quant_per_token(x, -2, 1, True), rtol=0, atol=0)


def test_disabled_is_identity_without_calibrating():
    q = UniformQuantizer(bits=2)
    q.enabled = False
    x = torch.randn(4, 3)
    assert q(x) is x and not q.calibrated


def test_channel_count_is_checked():
    q = UniformQuantizer(granularity='channel', num_channels=3)
    with pytest.raises(ValueError, match='expected 3 channels'):
        q(torch.zeros(2, 4))
    q = UniformQuantizer(granularity='head', num_heads=3)
    with pytest.raises(ValueError, match='num_heads=3 does not divide'):
        q(torch.zeros(2, 4))


def test_registry_builds_every_quantizer():
    assert isinstance(QUANTIZERS.build(dict(type='UniformQuantizer', bits=4)), UniformQuantizer)
    assert isinstance(QUANTIZERS.build(dict(type='LSQQuantizer', bits=4)), LSQQuantizer)
    assert isinstance(QUANTIZERS.build(dict(type='Log2Quantizer', bits=4, base='sqrt2')), Log2Quantizer)
    assert QUANTIZERS.parent is MODELS and MODELS.parent is MMENGINE_MODELS and MODELS.scope == 'mmvitq'


def test_extra_repr():
    q = UniformQuantizer(bits=4, symmetric=False, granularity='head', num_heads=3, observer='mse')
    assert repr(q) == ("UniformQuantizer(bits=4, granularity='head', symmetric=False, ch_axis=-1, num_heads=3, "
                       "observer='mse')")
