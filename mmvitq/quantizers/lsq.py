"""LSQQuantizer: learned step size quantization (LSQ, Esser et al. 2020), with LSQ+'s learnable offset."""
import math
from typing import Optional

import torch
from torch import Tensor, nn

from ..ops import reference
from ..registry import OBSERVERS, QUANTIZERS
from .base import BaseQuantizer, check_choice
from .observers import Observer


@OBSERVERS.register_module(name='lsq')
class LSQInitObserver(Observer):
    """LSQ's initial step size 2 * mean(|x|) / sqrt(quant_max) per row, with zero point 0.

    On an asymmetric (unsigned) grid the range is then [0, quant_max * scale], as LSQ's unsigned activations.
    """

    def __init__(self, quant_min: int, quant_max: int, symmetric: bool) -> None:
        super().__init__(quant_min, quant_max, symmetric)
        self.abs_sum = 0.0

    def _update(self, rows: Tensor, finite: Optional[Tensor]) -> None:
        absolute = rows.abs() if finite is None else torch.where(finite, rows.abs(), 0.0)
        self.abs_sum = self.abs_sum + absolute.sum(dim=1)

    def qparams(self) -> tuple[Tensor, Tensor]:
        self.check()
        scale = reference.clamp_scale(2 * (self.abs_sum / self.counts) / math.sqrt(self.quant_max))
        return scale, torch.zeros_like(scale)



@QUANTIZERS.register_module()
class LSQQuantizer(BaseQuantizer):
    """Uniform quantizer whose scale (and, with `learnable_offset`, zero point) is an nn.Parameter.

    Scale and zero point are initialised by the first calibration (or the first batch) from the `init`
    observer, written in place into the Parameters so optimizers already holding them keep working.
    Their gradients are scaled by 1 / sqrt(N * quant_max), N = input elements per scale.

    Args:
        learnable_offset: learn the zero point as well (LSQ+); needs symmetric=False.
        init: the observer in `mmvitq.registry.OBSERVERS` that sets the initial scale: 'minmax', 'mse',
            'percentile', 'ema' or 'lsq' (2 * mean(|x|) / sqrt(quant_max), zero point 0), or one of your own.
        init_kwargs: extra arguments of the init observer, e.g. dict(num_candidates=50) for 'mse'.
        Others: see `BaseQuantizer`; 'token' granularity has no scale to learn and is refused.
    """

    def __init__(self, bits: int = 8, symmetric: bool = True, granularity: str = 'tensor', ch_axis: int = -1,
                 num_channels: int = 1, num_heads: int = 1, learnable_offset: bool = False, init: str = 'lsq',
                 init_kwargs: Optional[dict] = None) -> None:
        super().__init__(bits, symmetric, granularity, ch_axis, num_channels, num_heads)
        check_choice('granularity', granularity, self.GRANULARITIES[:3])
        check_choice('init', init, tuple(OBSERVERS.module_dict))
        if not isinstance(learnable_offset, bool):
            raise ValueError(f'learnable_offset must be a bool (True or False), got {learnable_offset!r}')
        if learnable_offset and symmetric:
            raise ValueError('learnable_offset=True needs symmetric=False: a symmetric quantizer has no offset')
        self.init, self.init_kwargs, self.learnable_offset = init, dict(init_kwargs or {}), learnable_offset
        # Promote the buffers registered by BaseQuantizer to Parameters (same names, same state_dict keys).
        self.scale = nn.Parameter(self.scale)
        if learnable_offset:
            self.zero_point = nn.Parameter(self.zero_point)
        self.reset_observer()  # also validates init_kwargs

    def make_observer(self) -> Observer:
        return OBSERVERS.get(self.init)(self.quant_min, self.quant_max, self.symmetric, **self.init_kwargs)

    def grad_factor(self, x: Tensor) -> float:
        per_scale = max(x.numel(), 1) / self.scale.numel()
        return 1.0 / math.sqrt(per_scale * self.quant_max)

    def extra_repr(self) -> str:
        return f'{super().extra_repr()}, learnable_offset={self.learnable_offset}, init={self.init!r}'
