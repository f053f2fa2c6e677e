"""Fake-quantization ops: autograd Functions over the compiled kernels, one public function per granularity.

Every function computes q = clamp(round_half_even(x * (1 / s)) + z, quant_min, quant_max) and
returns (q - z) * s in the input's dtype (math in float32). Gradients: straight-through for the
input inside the range, LSQ for the scale and LSQ+ for the zero point (the zero point is rounded and
clamped in the forward pass), both multiplied by `grad_factor` (LSQ uses 1 / sqrt(N * quant_max)).
Scales are clamped to [1e-8, 1e30] without a host sync (zero, negatives and NaN to 1e-8, +inf to
1e30), so a finite input always gives a finite output; the gradient passes through that clamp so a
learned scale can recover. NaN inputs stay NaN and never reach a scale gradient; infinite inputs
saturate to the range's ends. float64 inputs, and devices the extension was not built for, run the
PyTorch reference (`mmvitq.ops.reference`). Inside `compact_activations()` a static quantizer in a
graph that needs gradients keeps integer codes for backward instead of float copies
(`CompactFakeQuantFunction`, `mmvitq.ops.compact`).
"""
import math
import warnings
from typing import Optional

import torch
from torch import Tensor
from torch.autograd import Function

from . import reference
from .compact import compact_enabled, register_output
from .ext_loader import load_ext

_ext = load_ext()
_KERNEL_DTYPES = (torch.float32, torch.float16, torch.bfloat16)
_warned = False


def backend(device: str | torch.device = 'cpu') -> str:
    """'compiled' when mmvitq._ext runs on `device`, else 'reference' (the PyTorch fallback)."""
    device = torch.device(device)
    if _ext is None:
        return 'reference'
    if device.type == 'cpu' or (device.type == 'cuda' and _ext.compiled_with_cuda()):
        return 'compiled'
    return 'reference'


def _use_kernel(x: Tensor) -> bool:
    global _warned
    if backend(x.device) == 'compiled':
        return x.dtype in _KERNEL_DTYPES
    if not _warned:
        warnings.warn(f'mmvitq._ext is not built for {x.device.type}: fake quantization falls back to '
                      'the slower PyTorch reference (run `make install` to build it)')
        _warned = True
    return False


class FakeQuantFunction(Function):
    """Autograd wrapper of fake_quant_forward / fake_quant_backward, like mmcv.ops wraps its kernels."""

    @staticmethod
    def forward(ctx, x: Tensor, scale: Tensor, zero_point: Tensor, channels: int, inner: int,
                quant_min: int, quant_max: int, grad_factor: float) -> Tensor:
        ctx.save_for_backward(x, scale, zero_point)
        ctx.args = (channels, inner, quant_min, quant_max, grad_factor)
        return _ext.fake_quant_forward(x, scale, zero_point, channels, inner, quant_min, quant_max)

    @staticmethod
    def backward(ctx, grad_output: Tensor):
        x, scale, zero_point = ctx.saved_tensors
        channels, inner, quant_min, quant_max, grad_factor = ctx.args
        need_s, need_z = ctx.needs_input_grad[1], ctx.needs_input_grad[2]
        dx, ds, dz = _ext.fake_quant_backward(grad_output.contiguous(), x, scale, zero_point, channels, inner,
                                              quant_min, quant_max, grad_factor, need_s or need_z)
        return dx, ds if need_s else None, dz if need_z else None, None, None, None, None, None


class CompactFakeQuantFunction(Function):
    """Fake quantization that keeps levels and residual codes for backward, not its float input (float32).

    The backward pass rebuilds an input with the same levels (and residuals to 1/250) and runs the
    ordinary backward on it; a later op that saved the output gets it rebuilt bit-exactly from the levels.
    """

    @staticmethod
    def forward(ctx, x: Tensor, scale: Tensor, zero_point: Tensor, channels: int, inner: int,
                quant_min: int, quant_max: int, grad_factor: float) -> Tensor:
        args = (channels, inner, quant_min, quant_max)
        kernel = _use_kernel(x)
        out, level, resid = (_ext.fake_quant_pack if kernel else reference.pack)(x, scale, zero_point, *args)
        unpack = _ext.fake_quant_unpack if kernel else reference.unpack
        ctx.save_for_backward(level, resid, scale, zero_point)
        ctx.args, ctx.kernel = (*args, grad_factor), kernel
        shape = out.shape  # the closure must not hold `out` itself, or the float output would stay alive
        register_output(out, lambda: unpack(level, resid, scale, zero_point, *args, True).view(shape))
        return out

    @staticmethod
    def backward(ctx, grad_output: Tensor):
        level, resid, scale, zero_point = ctx.saved_tensors
        channels, inner, quant_min, quant_max, grad_factor = ctx.args
        need_s, need_z = ctx.needs_input_grad[1], ctx.needs_input_grad[2]
        if ctx.kernel:
            x = _ext.fake_quant_unpack(level, resid, scale, zero_point, channels, inner, quant_min, quant_max, False)
            dx, ds, dz = _ext.fake_quant_backward(grad_output.contiguous(), x, scale, zero_point, channels, inner,
                                                  quant_min, quant_max, grad_factor, need_s or need_z)
        else:
            x = reference.unpack(level, resid, scale, zero_point, channels, inner, quant_min, quant_max, False)
            with torch.enable_grad():
                x, s, z = (t.detach().requires_grad_() for t in (x, scale, zero_point))
                out = reference.fake_quant(x, s, z, channels, inner, quant_min, quant_max, grad_factor)
                dx, ds, dz = torch.autograd.grad(out, (x, s, z), grad_output)
        return dx, ds if need_s else None, dz if need_z else None, None, None, None, None, None


class FakeQuantPerTokenFunction(Function):
    """Dynamic per-row fake quantization; the input gradient is straight-through inside the range."""

    @staticmethod
    def forward(ctx, x: Tensor, quant_min: int, quant_max: int, symmetric: bool) -> Tensor:
        y, scale, zero_point = _ext.fake_quant_per_token_forward(x, quant_min, quant_max, symmetric)
        ctx.save_for_backward(x, scale, zero_point)
        ctx.args = (quant_min, quant_max)
        return y

    @staticmethod
    def backward(ctx, grad_output: Tensor):
        x, scale, zero_point = ctx.saved_tensors
        quant_min, quant_max = ctx.args
        dx, _, _ = _ext.fake_quant_backward(grad_output.contiguous(), x, scale, zero_point, scale.numel(),
                                            x.shape[-1], quant_min, quant_max, 1.0, False)
        return dx, None, None, None


def _check_range(quant_min: int, quant_max: int) -> None:
    if not (isinstance(quant_min, int) and isinstance(quant_max, int) and quant_min < quant_max):
        raise ValueError(f'quant_min/quant_max must be ints with quant_min < quant_max, '
                         f'got {quant_min!r}, {quant_max!r}')


def _params(x: Tensor, scale: Tensor, zero_point: Optional[Tensor], channels: int) -> tuple[Tensor, Tensor]:
    """Flat float32 scale / zero point with `channels` entries (autograd-tracked conversions)."""
    if scale.numel() != channels:
        raise ValueError(f'scale has {scale.numel()} elements, expected {channels}')
    scale = scale.reshape(-1).float().contiguous()
    if zero_point is None:
        zero_point = torch.zeros(channels, dtype=torch.float32, device=x.device)
    elif zero_point.numel() != channels:
        raise ValueError(f'zero_point has {zero_point.numel()} elements, expected {channels}')
    return scale, zero_point.reshape(-1).float().contiguous()


def _fake_quant(x: Tensor, scale: Tensor, zero_point: Optional[Tensor], channels: int, inner: int,
                quant_min: int, quant_max: int, grad_factor: float) -> Tensor:
    _check_range(quant_min, quant_max)
    scale, zero_point = _params(x, scale, zero_point, channels)
    if compact_enabled() and torch.is_grad_enabled() and x.dtype == torch.float32 and quant_max - quant_min <= 255 \
            and (x.requires_grad or scale.requires_grad or zero_point.requires_grad):
        return CompactFakeQuantFunction.apply(x.contiguous(), scale, zero_point, channels, inner, quant_min,
                                              quant_max, float(grad_factor))
    if _use_kernel(x):
        return FakeQuantFunction.apply(x.contiguous(), scale, zero_point, channels, inner, quant_min, quant_max,
                                       float(grad_factor))
    return reference.fake_quant(x, scale, zero_point, channels, inner, quant_min, quant_max, grad_factor)


def fake_quant_per_tensor(x: Tensor, scale: Tensor, zero_point: Optional[Tensor] = None, quant_min: int = -128,
                          quant_max: int = 127, grad_factor: float = 1.0) -> Tensor:
    """Fake-quantize `x` with one scale (and zero point) for the whole tensor."""
    return _fake_quant(x, scale, zero_point, 1, max(x.numel(), 1), quant_min, quant_max, grad_factor)


def _axis(x: Tensor, axis: int) -> int:
    if not -x.dim() <= axis < x.dim():
        raise ValueError(f'axis {axis} is out of range for a {x.dim()}-d input')
    return axis % x.dim()


def fake_quant_per_channel(x: Tensor, scale: Tensor, zero_point: Optional[Tensor] = None, axis: int = 0,
                           quant_min: int = -128, quant_max: int = 127, grad_factor: float = 1.0) -> Tensor:
    """Fake-quantize `x` with one scale per index of dimension `axis` (any axis)."""
    axis = _axis(x, axis)
    inner = math.prod(x.shape[axis + 1:])
    return _fake_quant(x, scale, zero_point, x.shape[axis], max(inner, 1), quant_min, quant_max, grad_factor)


def fake_quant_per_head(x: Tensor, scale: Tensor, zero_point: Optional[Tensor] = None, num_heads: int = 1,
                        axis: int = -1, quant_min: int = -128, quant_max: int = 127,
                        grad_factor: float = 1.0) -> Tensor:
    """Fake-quantize `x` with one scale per attention head: dimension `axis` holds num_heads * head_dim."""
    axis = _axis(x, axis)
    if num_heads < 1 or x.shape[axis] % num_heads:
        raise ValueError(f'num_heads={num_heads} does not divide dimension {axis} of size {x.shape[axis]}')
    inner = x.shape[axis] // num_heads * math.prod(x.shape[axis + 1:])
    return _fake_quant(x, scale, zero_point, num_heads, max(inner, 1), quant_min, quant_max, grad_factor)


def fake_quant_per_token(x: Tensor, quant_min: int = -128, quant_max: int = 127,
                         symmetric: bool = True) -> Tensor:
    """Fake-quantize each row of the last dimension with its own scale, computed on the fly."""
    _check_range(quant_min, quant_max)
    if x.dim() == 0:
        raise ValueError('per-token quantization needs an input with at least one dimension')
    if symmetric and not quant_min < 0 < quant_max:
        raise ValueError(f'symmetric per-token quantization needs quant_min < 0 < quant_max, '
                         f'got {quant_min}, {quant_max}')
    if x.numel() and _use_kernel(x):
        return FakeQuantPerTokenFunction.apply(x.contiguous(), quant_min, quant_max, symmetric)
    return reference.fake_quant_per_token(x, quant_min, quant_max, symmetric)


def quant_range(bits: int, symmetric: bool = True) -> tuple[int, int]:
    """Integer range of a `bits`-bit quantizer: signed for symmetric, unsigned for asymmetric."""
    if symmetric:
        return -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return 0, (1 << bits) - 1
