"""Log2Quantizer: logarithmic fake quantization of post-softmax attention in [0, 1], dense near 0 where it matters."""
import torch
from torch import Tensor

from ..ops import reference
from ..registry import QUANTIZERS
from .base import BaseQuantizer, check_choice
from .observers import MinMaxObserver, Observer


class MaxObserver(MinMaxObserver):
    """Scale = the running max (zero point unused): the top level of a log grid."""

    def qparams(self) -> tuple[Tensor, Tensor]:
        self.check()
        scale = reference.clamp_scale(self.min_max()[1])
        return scale, torch.zeros_like(scale)


@QUANTIZERS.register_module()
class Log2Quantizer(BaseQuantizer):
    """Per-tensor log quantizer: levels scale * base^-q for codes q = 0..2^bits - 2; the last code is 0.

    A value x > 0 gets the code round(-log_base(x / scale)) clamped at 0, so values above the scale
    saturate to it; codes past 2^bits - 2 (values below about scale * base^-(2^bits - 1.5)), zeros and
    negatives map to 0. `scale` is the observed max (about 1 after a softmax). The input gradient is
    straight-through.

    Args:
        bits: bit-width, 2..8.
        base: '2' (log2) or 'sqrt2' (log-sqrt2: twice the levels per octave, less range).
    """

    BASES = ('2', 'sqrt2')

    def __init__(self, bits: int = 8, base: str = '2') -> None:
        super().__init__(bits, symmetric=False, granularity='tensor')
        check_choice('base', base, self.BASES)
        self.base = base
        self.reset_observer()

    def make_observer(self) -> Observer:
        return MaxObserver(self.quant_min, self.quant_max, self.symmetric)

    def fake_quantize(self, x: Tensor) -> Tensor:
        codes_per_octave = 1.0 if self.base == '2' else 2.0
        xf, scale = x.float(), reference.clamp_scale(self.scale)
        code = torch.round(-torch.log2(xf / scale) * codes_per_octave)  # x <= 0 gives +inf or NaN
        level = torch.exp2(-code.clamp_min(0) / codes_per_octave) * scale
        q = torch.where(code < self.quant_max, level, torch.zeros_like(level))
        q = torch.where(torch.isnan(xf), xf, q)  # NaN stays NaN; +inf saturates to the scale, as the uniform ops
        return reference.straight_through(x, q.to(x.dtype))  # exactly q forward, straight-through backward

    def extra_repr(self) -> str:
        return f'bits={self._bits}, base={self.base!r}'
