"""Fake quantization in plain PyTorch autograd: the test oracle of the kernels and their fallback.

Same contract as the kernels: the input is viewed as [outer, channels, inner] with one scale and
zero point per channel; q = clamp(round_half_even(x * (1 / s)) + z, qmin, qmax), out = (q - z) * s.
Gradients are LSQ's (LSQ+ for the zero point), computed by autograd through straight-through rounding.
"""
import torch
from torch import Tensor

#: Scales are clamped to [MIN_SCALE, MAX_SCALE] (zero, negatives and NaN to MIN_SCALE, +inf to MAX_SCALE), as the
#: kernels do; the gradient passes through. MAX_SCALE keeps every fake-quantized value of a finite input finite.
MIN_SCALE = 1e-8
MAX_SCALE = 1e30


def clamp_scale(scale: Tensor) -> Tensor:
    """`scale` as the kernels use it: NaN, zero and negatives -> MIN_SCALE, above MAX_SCALE (+inf too) -> MAX_SCALE."""
    return scale.nan_to_num(MIN_SCALE, MAX_SCALE, MIN_SCALE).clamp(MIN_SCALE, MAX_SCALE)


def _round(t: Tensor) -> Tensor:
    """Round half to even (kept as a module attribute so tests can smooth it for gradcheck)."""
    return torch.round(t)


# Straight-through helpers are written as `exact forward value + zero-valued term carrying the gradient`, so the
# forward value is bit-exact (t + (round(t) - t) can be off by one ulp and flip a clamp decision). A non-finite
# t (a NaN or infinite scale) carries no gradient and, unlike t - t.detach(), does not turn the value into NaN.
def _passthrough(t: Tensor) -> Tensor:
    return torch.where(torch.isfinite(t), t - t.detach(), torch.zeros((), dtype=t.dtype, device=t.device))


def straight_through(t: Tensor, forward_value: Tensor) -> Tensor:
    return forward_value.detach() + _passthrough(t)


def _scale_grad(t: Tensor, factor: float) -> Tensor:
    """Identity whose gradient is multiplied by `factor` (LSQ's gradient scale)."""
    return t.detach() + _passthrough(t) * factor


def fake_quant(x: Tensor, scale: Tensor, zero_point: Tensor | None, channels: int, inner: int,
               quant_min: int, quant_max: int, grad_factor: float = 1.0) -> Tensor:
    """Fake-quantize `x` viewed as [outer, channels, inner] with per-channel scale and zero point."""
    shape, dtype = x.shape, x.dtype
    compute = torch.float64 if dtype == torch.float64 else torch.float32
    xf = x.to(compute).reshape(-1, channels, inner)
    nan = torch.isnan(xf)
    xs = xf.nan_to_num(0.0)  # NaN -> 0 (restored below), +-inf -> +-max: all gradients stay finite
    s = _scale_grad(scale.to(compute).reshape(1, channels, 1), grad_factor)
    s = straight_through(s, clamp_scale(s))
    if zero_point is None:
        z = torch.zeros((), dtype=compute, device=x.device)
    else:
        z = _scale_grad(zero_point.to(compute).reshape(1, channels, 1), grad_factor)
        z = straight_through(z, _round(z.clamp(quant_min, quant_max)).nan_to_num(0.0))
    v = (xs * (1.0 / s)).clamp(-2.0**22, 2.0**22)  # infinities -> far outside any range, finite
    level = straight_through(v, _round(v)) + z
    # torch.clamp passes no gradient at the bounds themselves; levels equal to a bound are in range.
    lo, hi = (torch.tensor(b, dtype=compute, device=x.device) for b in (quant_min, quant_max))
    q = torch.where(level < lo, lo, torch.where(level > hi, hi, level))
    out = (q - z) * s
    out = torch.where(nan, xf.detach(), out)
    return out.reshape(shape).to(dtype)


def token_qparams(x: Tensor, quant_min: int, quant_max: int, symmetric: bool) -> tuple[Tensor, Tensor]:
    """Per-row scale and zero point over the last dim, ignoring non-finite values."""
    compute = torch.float64 if x.dtype == torch.float64 else torch.float32
    xf = x.detach().to(compute)
    xf = torch.where(torch.isfinite(xf), xf, torch.zeros((), dtype=compute, device=x.device))
    rows = xf.reshape(-1, x.shape[-1])
    lo, hi = rows.amin(-1).clamp_max(0), rows.amax(-1).clamp_min(0)
    if symmetric:
        scale = clamp_scale(torch.maximum(-lo, hi) / quant_max)
        return scale, torch.zeros_like(scale)
    scale = clamp_scale((hi - lo) / (quant_max - quant_min))
    zero = (quant_min - torch.round(lo / scale)).clamp(quant_min, quant_max)
    return scale, zero


def fake_quant_per_token(x: Tensor, quant_min: int, quant_max: int, symmetric: bool = True) -> Tensor:
    """Dynamic per-token fake quantization: one scale per row of the last dim, straight-through grad."""
    if x.numel() == 0:
        return x.clone()
    scale, zero = token_qparams(x, quant_min, quant_max, symmetric)
    return fake_quant(x, scale, zero, scale.numel(), x.shape[-1], quant_min, quant_max)


# Compact fake quantization (mmvitq.ops.compact): the kernels' pack / unpack in PyTorch, element for element.
RESID_STEPS, RESID_MAX, CLIPPED, NAN = 250.0, 124.0, -128, -127


def kernel_qparams(scale: Tensor, zero_point: Tensor, quant_min: int, quant_max: int) -> tuple[Tensor, Tensor]:
    """Scale and zero point as the kernels use them: the scale clamped (`clamp_scale`), the zero point clamped to the
    range and rounded (NaN -> 0); float32, shapes kept."""
    zero = torch.round(zero_point.float().clamp(quant_min, quant_max)).nan_to_num(0.0)
    return clamp_scale(scale.float()), zero


def _packed_qparams(scale: Tensor, zero_point: Tensor, channels: int, quant_min: int,
                    quant_max: int) -> tuple[Tensor, Tensor]:
    """`kernel_qparams` as [1, C, 1]."""
    s, z = kernel_qparams(scale, zero_point, quant_min, quant_max)
    return s.reshape(1, channels, 1), z.reshape(1, channels, 1)


def pack(x: Tensor, scale: Tensor, zero_point: Tensor, channels: int, inner: int, quant_min: int,
         quant_max: int) -> tuple[Tensor, Tensor, Tensor]:
    """float32 `x` -> (fake-quantized x, level - quant_min as uint8, residual code as int8)."""
    xf = x.reshape(-1, channels, inner)
    s, z = _packed_qparams(scale, zero_point, channels, quant_min, quant_max)
    nan = torch.isnan(xf)
    v = (xf * (1.0 / s)).clamp(quant_min - z - 1.0, quant_max - z + 1.0)
    rounded = torch.round(v)
    q = rounded + z
    qc = q.clamp(quant_min, quant_max)
    out = torch.where(nan, xf, (qc - z) * s)
    level = (qc - quant_min).nan_to_num(0.0).to(torch.uint8)
    resid = ((v - rounded) * RESID_STEPS).round().clamp(-RESID_MAX, RESID_MAX).nan_to_num(0.0).to(torch.int8)
    resid = resid.masked_fill((q < quant_min) | (q > quant_max), CLIPPED).masked_fill(nan, NAN)
    return out.reshape(x.shape), level.reshape(x.shape), resid.reshape(x.shape)


def unpack(level: Tensor, resid: Tensor, scale: Tensor, zero_point: Tensor, channels: int, inner: int,
           quant_min: int, quant_max: int, quantized: bool) -> Tensor:
    """An input that packs to (level, resid) again, or with `quantized` the fake-quantized output."""
    s, z = _packed_qparams(scale, zero_point, channels, quant_min, quant_max)
    q = level.reshape(-1, channels, inner).float() + quant_min
    r = resid.reshape(q.shape)
    if quantized:
        v = q - z
    else:
        outside = torch.where(q == quant_min, quant_min - z - 1.0, quant_max - z + 1.0)
        v = torch.where(r == CLIPPED, outside, (q - z) + r.float() / RESID_STEPS)
    return (v * s).masked_fill(r == NAN, float('nan')).reshape(level.shape)
