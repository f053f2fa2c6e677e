"""Log2Quantizer: log2 and log-sqrt2 levels on hand-picked values."""
import math

import torch

from mmvitq.quantizers import Log2Quantizer


def quantize(bits, base, values, calibrate_on=(1.0, )):
    q = Log2Quantizer(bits=bits, base=base)
    q(torch.tensor(calibrate_on))  # lazy init: scale = observed max
    return q(torch.tensor(values)).tolist()


def test_log2_levels():
    # 4 bits: levels 2^0 .. 2^-14, the last code is 0; rounding is in the log domain.
    values = [1.0, 0.5, 0.3, 0.75, 0.0, 2**-14, 2**-14.4, 2**-14.6, 2**-15, 3.0, -0.2]
    expected = [1.0, 0.5, 0.25, 1.0, 0.0, 2**-14, 2**-14, 0.0, 0.0, 1.0, 0.0]
    assert quantize(4, '2', values) == expected


def test_log2_3_bits_smallest_level():
    assert quantize(3, '2', [2**-6, 2**-7, 0.1]) == [2**-6, 0.0, 0.125]


def test_log_sqrt2_levels():
    # 4 bits: levels sqrt2^0 .. sqrt2^-14 = 2^-7.
    got = quantize(4, 'sqrt2', [1.0, 0.5, 0.6, 0.3, 2**-7, 2**-7.6, 0.0])
    expected = [1.0, 0.5, math.sqrt(0.5), 0.25 * math.sqrt(2), 2**-7, 0.0, 0.0]
    assert got == [float(torch.tensor(e)) for e in expected]


def test_scale_is_observed_max():
    got = quantize(4, '2', [0.8, 0.4, 0.3, 1.0, 0.01], calibrate_on=[0.1, 0.8])
    torch.testing.assert_close(torch.tensor(got), torch.tensor([0.8, 0.4, 0.4, 0.8, 0.8 / 64]))


def test_straight_through_gradient():
    q = Log2Quantizer(bits=4)
    x = torch.tensor([0.3, 0.0, 0.7], requires_grad=True)
    (q(x) * torch.tensor([1., 2., 3.])).sum().backward()
    assert x.grad.tolist() == [1., 2., 3.]
