"""The calibration context: observe N batches, then freeze; reset_calibration."""
import pytest
import torch
from torch import nn

from mmvitq.quantizers import MinMaxObserver, UniformQuantizer, calibration, reset_calibration


class TwoBranch(nn.Module):
    """A per-channel quantizer on the input, another on a branch that calibration never runs."""

    def __init__(self):
        super().__init__()
        self.act = UniformQuantizer(bits=4, symmetric=False, granularity='channel', num_channels=3)
        self.unused = UniformQuantizer(bits=4)

    def forward(self, x, branch=False):
        return self.unused(x) if branch else self.act(x)


def batches(n=3):
    g = torch.Generator().manual_seed(0)
    return [torch.randn(2, 5, 3, generator=g) * (i + 1) for i in range(n)]


def test_observes_n_batches_then_freezes():
    model, data = TwoBranch(), batches()
    with calibration(model):
        for x in data:
            assert model(x) is x  # float while observing
        assert model.act.observing and not model.act.calibrated
    reference = MinMaxObserver(0, 15, False)
    reference.update(torch.cat(data).reshape(-1, 3).T)
    scale, zero_point = reference.qparams()
    assert torch.equal(model.act.scale, scale) and torch.equal(model.act.zero_point, zero_point)
    assert model.act.calibrated and not model.act.observing
    assert not model.unused.calibrated and not model.unused.observing  # saw no batch: left as it was
    assert model.act.observer.num_batches == 0  # statistics dropped after freeze
    assert not torch.equal(model(data[0]), data[0])  # quantizes now


def test_recalibration_replaces_the_range():
    model, data = TwoBranch(), batches()
    with calibration(model):
        model(data[2])
    wide = model.act.scale.clone()
    with calibration(model):
        model(data[0])
    assert (model.act.scale < wide).all()


def test_exception_discards_statistics():
    model = TwoBranch()
    with pytest.raises(RuntimeError), calibration(model):
        model(batches()[0])
        raise RuntimeError('data loader failed')
    assert not model.act.calibrated and not model.act.observing
    assert model.act.observer.num_batches == 0


def test_reset_calibration():
    model, data = TwoBranch(), batches()
    model(data[0])
    model(data[0], branch=True)
    assert model.act.calibrated and model.unused.calibrated
    reset_calibration(model)
    assert not model.act.calibrated and not model.unused.calibrated
    model(data[2])  # lazy init again, on the new batch
    expected = MinMaxObserver(0, 15, False)
    expected.update(data[2].reshape(-1, 3).T)
    assert torch.equal(model.act.scale, expected.qparams()[0])


def test_disabled_passes_inputs_through_and_restores_each_flag():
    from mmvitq.quantizers import UniformQuantizer, disabled
    on, off = UniformQuantizer(bits=2), UniformQuantizer(bits=2)
    off.enabled = False
    x = torch.linspace(-1, 1, 11)
    on(x)  # lazy calibration
    quantized = on(x)
    assert not torch.equal(quantized, x)
    with disabled([on, off]):
        assert torch.equal(on(x), x) and not on.enabled and not off.enabled
    assert on.enabled and not off.enabled and torch.equal(on(x), quantized)
    with pytest.raises(RuntimeError), disabled([on]):
        raise RuntimeError
    assert on.enabled
