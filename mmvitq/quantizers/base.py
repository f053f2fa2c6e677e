"""BaseQuantizer: what every fake quantizer shares (state, granularity, observe / freeze / forward)."""
import warnings
from typing import Any, Optional

import torch
from torch import Tensor, nn

from ..ops import fake_quant_per_channel, fake_quant_per_head, fake_quant_per_tensor, fake_quant_per_token, quant_range
from .observers import CalibrationError, Observer


def check_choice(field: str, value: Any, choices: tuple) -> None:
    """Raise ValueError naming `field` and its allowed values unless `value` is one of `choices`."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f'{field} must be one of {choices}, got {value!r}')


def check_int(field: str, value: Any, low: int, high: Optional[int] = None) -> None:
    """Raise ValueError naming `field` and its allowed range unless `value` is an int in low..high."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
        allowed = f'in {low}..{high}' if high is not None else f'>= {low}'
        raise ValueError(f'{field} must be an int {allowed}, got {value!r}')


def check_bits(bits: Any) -> None:
    check_int('bits', bits, 2, 8)


class BaseQuantizer(nn.Module):
    """Fake-quantizes its input with a scale (and zero point) per tensor, channel or head, or per token.

    Args:
        bits: bit-width, 2..8.
        symmetric: signed grid with zero point 0, else unsigned [0, 2^bits - 1] grid with a zero point.
        granularity: 'tensor' (one scale), 'channel' (`num_channels` scales along `ch_axis`), 'head'
            (`num_heads` scales; dim `ch_axis` holds num_heads * head_dim) or 'token' (a scale per row of
            the last dim, computed on the fly: nothing is stored, so `scale`/`zero_point` are empty).
        ch_axis: the channel (or head) dimension of the input.
        num_channels: number of scales of a 'channel' quantizer.
        num_heads: number of scales of a 'head' quantizer.

    Forward: disabled (`enabled = False`) -> identity; observing (inside `calibration()`) -> the batch
    feeds the observer and passes through unchanged; 'token' -> dynamic per-token fake quantization;
    otherwise, the first batch seen by an uncalibrated quantizer calibrates it (lazy init), then the
    input is fake-quantized with the frozen scale and zero point.
    Subclasses build their observer in `make_observer` and may scale the gradients in `grad_factor`.

    The whole state is in the state_dict: `scale` and `zero_point` (float32, one entry per scale),
    `bits` (int64 scalar) and `calibrated` (bool scalar), so loading a checkpoint restores it bit-exactly
    with no re-calibration. `bits` and `calibrated` are mirrored in Python attributes, refreshed on load,
    so that forward never reads a device tensor back to the host.
    """

    GRANULARITIES = ('tensor', 'channel', 'head', 'token')

    def __init__(self, bits: int = 8, symmetric: bool = True, granularity: str = 'tensor', ch_axis: int = -1,
                 num_channels: int = 1, num_heads: int = 1) -> None:
        super().__init__()
        check_bits(bits)
        if not isinstance(symmetric, bool):
            raise ValueError(f'symmetric must be a bool (True or False), got {symmetric!r}')
        check_choice('granularity', granularity, self.GRANULARITIES)
        if isinstance(ch_axis, bool) or not isinstance(ch_axis, int):
            raise ValueError(f'ch_axis must be an int (a dimension of the input), got {ch_axis!r}')
        check_int('num_channels', num_channels, 1)
        check_int('num_heads', num_heads, 1)
        self.symmetric, self.granularity, self.ch_axis = symmetric, granularity, ch_axis
        self.num_channels, self.num_heads = num_channels, num_heads
        self.enabled = True
        self.observing = False
        size = {'tensor': 1, 'channel': num_channels, 'head': num_heads, 'token': 0}[granularity]
        self.register_buffer('scale', torch.ones(size))
        self.register_buffer('zero_point', torch.zeros(size))
        self.register_buffer('bits', torch.tensor(bits, dtype=torch.int64))
        self.register_buffer('calibrated', torch.tensor(False))
        self._bits = bits
        self._set_calibrated(False)
        self.observer: Optional[Observer] = None
        self.accept_state_bits = False  # see _load_from_state_dict

    @property
    def quant_min(self) -> int:
        return quant_range(self._bits, self.symmetric)[0]

    @property
    def quant_max(self) -> int:
        return quant_range(self._bits, self.symmetric)[1]

    def make_observer(self) -> Observer:
        """A fresh observer for the current bit-width."""
        raise NotImplementedError

    def reset_observer(self) -> None:
        self.observer = self.make_observer()

    def set_bits(self, bits: int) -> None:
        """Switch the bit-width (mixed precision). A no-op if unchanged.

        `scale`/`zero_point` keep their values, which are stale for the new grid, and the quantizer is
        marked uncalibrated: the next `calibration()` or forward re-derives them from data (an LSQ
        quantizer re-initialises its Parameters in place). Statistics being observed are dropped.
        """
        check_bits(bits)
        if bits == self._bits:
            return
        self.bits.fill_(bits)
        self._bits = bits
        self.reset()

    def reset(self) -> None:
        """Forget the calibration: the next calibration() or forward recomputes scale and zero point."""
        self._set_calibrated(False)
        self.reset_observer()

    def _set_calibrated(self, calibrated: bool) -> None:
        calibrated = calibrated or self.granularity == 'token'  # a token quantizer has nothing to calibrate
        self.calibrated.fill_(calibrated)
        self._calibrated = calibrated

    def _load_from_state_dict(self, state_dict: dict, prefix: str, *args, **kwargs) -> None:
        """Load the state, refusing one that disagrees with how this quantizer was built: other `bits` (unless
        `accept_state_bits`, set by a mixed-precision search whose widths live in the checkpoint) or another
        number of scales (granularity, channels, heads)."""
        where = prefix.rstrip('.') or type(self).__name__
        bits = state_dict.get(prefix + 'bits')
        if bits is not None and int(bits) != self._bits and not self.accept_state_bits:
            raise ValueError(f'checkpoint: {where} holds a {int(bits)}-bit quantizer, the config builds it with '
                             f'{self._bits} bits; set the bits in the config (qconfig w_bits / a_bits / overrides) to '
                             'those of the checkpoint, or quantize the float checkpoint again')
        for name in ('scale', 'zero_point'):
            value = state_dict.get(prefix + name)
            if value is not None and value.shape != getattr(self, name).shape:
                raise ValueError(f'checkpoint: {where}.{name} has shape {tuple(value.shape)}, the config builds '
                                 f'{tuple(getattr(self, name).shape)} ({self.extra_repr()}): the checkpoint was '
                                 'quantized with another granularity or number of channels/heads')
        if state_dict.get(prefix + 'calibrated') is not None and bool(state_dict[prefix + 'calibrated']) \
                and prefix + 'scale' not in state_dict:
            raise ValueError(f'checkpoint: {where} is marked calibrated but holds no scale')
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        self._bits, self._calibrated = int(self.bits), bool(self.calibrated)

    def start_observing(self) -> None:
        """Enter calibration mode with empty statistics: forward observes its inputs and returns them."""
        self.reset_observer()
        self.observing = True

    def stop_observing(self, freeze: bool = True) -> int:
        """Leave calibration mode, freezing scale and zero point if `freeze` and a batch was observed; returns the
        number of non-finite values the statistics left out. Raises CalibrationError (after leaving calibration
        mode) when the batches held no finite value for some scale."""
        try:
            if freeze and self.observer.num_batches:
                return self.freeze()
            self.reset_observer()
            return 0
        finally:
            self.observing = False

    def observe(self, x: Tensor) -> None:
        """Add a batch to the observer's statistics (a token quantizer has none to collect)."""
        if self.granularity == 'token':
            return
        x = x.detach().float()
        self.observer.update(self._rows(x) if x.numel() else x.new_empty(self.scale.numel(), 0))

    def freeze(self) -> int:
        """Set scale and zero point from the observed statistics (in place) and mark calibrated; returns the number
        of non-finite values left out. Raises CalibrationError if some scale saw no finite value."""
        try:
            self.set_qparams(*self.observer.qparams())
            return self.observer.nonfinite
        finally:
            self.reset_observer()

    def calibrate(self, x: Tensor) -> int:
        """Calibrate on `x` alone (e.g. a weight): forget the old range, observe `x`, freeze; returns the number of
        non-finite values left out."""
        self.reset()
        self.observe(x)
        return self.freeze()

    def calibrate_from(self, statistics: Observer) -> int:
        """Calibrate from statistics observed elsewhere (e.g. at another width: an observer whose statistics do not
        depend on the grid), mapped onto this quantizer's grid; returns the number of non-finite values left out."""
        self.observer = statistics.on_grid(self.quant_min, self.quant_max)
        return self.freeze()

    def set_qparams(self, scale: 'Tensor | float', zero_point: 'Tensor | float') -> None:
        """Set scale and zero point (broadcast to their shapes) in place and mark calibrated."""
        self.scale.data.copy_(torch.as_tensor(scale).expand_as(self.scale))
        self.zero_point.data.copy_(torch.as_tensor(zero_point).expand_as(self.zero_point))
        self._set_calibrated(True)

    def _rows(self, x: Tensor) -> Tensor:
        """`x` as [C, M]: one row per scale."""
        if self.granularity == 'tensor':
            return x.reshape(1, -1)
        if not -x.dim() <= self.ch_axis < x.dim():
            raise ValueError(f'ch_axis={self.ch_axis} is out of range for a {x.dim()}-d input')
        size = x.shape[self.ch_axis]
        if self.granularity == 'channel' and size != self.num_channels:
            raise ValueError(f'expected {self.num_channels} channels along dim {self.ch_axis}, got {size}')
        if self.granularity == 'head' and size % self.num_heads:
            raise ValueError(f'num_heads={self.num_heads} does not divide dim {self.ch_axis} of size {size}')
        # Heads are contiguous blocks of head_dim channels, so grouping the moved dim gives one row per head.
        return x.movedim(self.ch_axis, 0).reshape(self.scale.numel(), -1)

    def grad_factor(self, x: Tensor) -> float:
        """Multiplier of the scale and zero-point gradients."""
        return 1.0

    def fake_quantize(self, x: Tensor) -> Tensor:
        """Fake-quantize `x` with the current scale and zero point."""
        kwargs = dict(quant_min=self.quant_min, quant_max=self.quant_max, grad_factor=self.grad_factor(x))
        if self.granularity == 'tensor':
            return fake_quant_per_tensor(x, self.scale, self.zero_point, **kwargs)
        if self.granularity == 'channel':
            return fake_quant_per_channel(x, self.scale, self.zero_point, axis=self.ch_axis, **kwargs)
        return fake_quant_per_head(x, self.scale, self.zero_point, num_heads=self.num_heads, axis=self.ch_axis,
                                   **kwargs)

    def forward(self, x: Tensor) -> Tensor:
        if not self.enabled:
            return x
        if self.observing:
            self.observe(x)
            return x
        if self.granularity == 'token':
            return fake_quant_per_token(x, self.quant_min, self.quant_max, self.symmetric)
        if not self._calibrated:  # lazy init: the first non-empty batch calibrates the quantizer
            if not x.numel():
                return x
            self.observe(x)
            try:
                ignored = self.freeze()
            except CalibrationError as e:
                raise CalibrationError(f'{type(self).__name__}({self.extra_repr()}) calibrating on its first batch: '
                                       f'{e}') from None
            if ignored:
                warnings.warn(f'{type(self).__name__}({self.extra_repr()}): its first batch, which calibrated it, '
                              f'held {ignored} non-finite values; they were left out of the range')
        return self.fake_quantize(x)

    def extra_repr(self) -> str:
        s = f'bits={self._bits}, granularity={self.granularity!r}, symmetric={self.symmetric}'
        if self.granularity in ('channel', 'head'):
            count = 'num_channels' if self.granularity == 'channel' else 'num_heads'
            s += f', ch_axis={self.ch_axis}, {count}={self.scale.numel()}'
        return s
