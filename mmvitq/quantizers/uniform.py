"""UniformQuantizer: static uniform fake quantization, its scale set by a range observer (post-training)."""
from typing import Optional

from ..registry import OBSERVERS, QUANTIZERS
from .base import BaseQuantizer, check_choice
from .observers import Observer


@QUANTIZERS.register_module()
class UniformQuantizer(BaseQuantizer):
    """Uniform quantizer calibrated by a range observer: 'minmax', 'ema', 'percentile', 'mse' or one of your own.

    Args:
        observer: name of the range observer in `mmvitq.registry.OBSERVERS`.
        observer_kwargs: extra arguments of the observer, e.g. dict(percentile=99.9) or dict(momentum=0.1).
        Others: see `BaseQuantizer`.
    """

    def __init__(self, bits: int = 8, symmetric: bool = True, granularity: str = 'tensor', ch_axis: int = -1,
                 num_channels: int = 1, num_heads: int = 1, observer: str = 'minmax',
                 observer_kwargs: Optional[dict] = None) -> None:
        super().__init__(bits, symmetric, granularity, ch_axis, num_channels, num_heads)
        check_choice('observer', observer, tuple(OBSERVERS.module_dict))
        self.observer_name, self.observer_kwargs = observer, dict(observer_kwargs or {})
        self.reset_observer()  # also validates observer_kwargs

    def make_observer(self) -> Observer:
        return OBSERVERS.get(self.observer_name)(self.quant_min, self.quant_max, self.symmetric, **self.observer_kwargs)

    def extra_repr(self) -> str:
        return f'{super().extra_repr()}, observer={self.observer_name!r}'
