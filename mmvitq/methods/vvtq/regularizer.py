"""The variation-aware regulariser against weight oscillation: pull latent weights onto their grid points.

Per weight quantizer, on the latent weight clipped to the quantizer's range:
    R = mean((w_clip - w_q)^2) + sum over bins of Var(w_clip in the bin)
where w_q is the (detached) quantized weight and a bin is the set of weights sharing one quantized value
(one grid point of one scale row: per-channel or per-head quantizers have bins per row). Both terms push
weights that sit near a rounding threshold, where LSQ makes them flip back and forth, towards the centre
of their bin. The per-bin variances are computed for all bins at once with index_add (scatter), in two
passes for numerical stability; `bin_variance_loop` is the reference implementation's per-bin loop, kept
as the test oracle and the benchmark's baseline. The scales are treated as constants here: only the
latent weights are regularised.
"""
import math
from typing import Callable, Iterable

import torch
from torch import Tensor

from ...ops import reference
from ...quantizers import BaseQuantizer


def grid_position(weight: Tensor, quantizer: BaseQuantizer) -> Tensor:
    """`weight` on the quantizer's integer grid, clamped but not rounded, as [rows, M] (one row per scale);
    the scale (clamped to the kernels' range) and zero point are detached."""
    rows = quantizer._rows(weight)
    scale = reference.clamp_scale(quantizer.scale.detach()).reshape(-1, 1)  # as the kernels use it
    return (rows / scale + quantizer.zero_point.detach().reshape(-1, 1)).clamp(quantizer.quant_min,
                                                                               quantizer.quant_max)


def bin_codes(weight: Tensor, quantizer: BaseQuantizer) -> tuple[Tensor, Tensor, Tensor]:
    """(clipped latent weight, detached quantized weight, bin index) of `weight`, each as [rows, M].

    Bin indices number the grid points of all rows: row * levels + (code - quant_min).
    """
    codes = grid_position(weight, quantizer)
    scale = reference.clamp_scale(quantizer.scale.detach()).reshape(-1, 1)  # as the kernels use it
    zero_point = quantizer.zero_point.detach().reshape(-1, 1)
    rounded = codes.detach().round()
    levels = quantizer.quant_max - quantizer.quant_min + 1
    rows = torch.arange(codes.shape[0], device=codes.device).reshape(-1, 1)
    bins = (rounded - quantizer.quant_min).long() + rows * levels
    return (codes - zero_point) * scale, (rounded - zero_point) * scale, bins


def bin_variance(values: Tensor, bins: Tensor, num_bins: int) -> Tensor:
    """Sum over bins of the unbiased variance of `values` in each bin (bins with < 2 values count 0)."""
    values, bins = values.reshape(-1), bins.reshape(-1)
    counts = torch.bincount(bins, minlength=num_bins).to(values.dtype)
    means = values.new_zeros(num_bins).index_add(0, bins, values) / counts.clamp_min(1)
    squares = values.new_zeros(num_bins).index_add(0, bins, (values - means[bins]).square())
    return (squares / (counts - 1).clamp_min(1)).masked_fill(counts < 2, 0).sum()


def bin_variance_loop(values: Tensor, bins: Tensor, num_bins: int) -> Tensor:
    """`bin_variance` one bin at a time, as the reference implementation does: the test oracle and the
    benchmark's baseline."""
    total = values.new_zeros(())
    for b in range(num_bins):
        members = values[bins == b]
        if members.numel() > 1:
            total = total + members.var()
    return total


def oscillation_loss(weight: Tensor, quantizer: BaseQuantizer, variance: Callable = bin_variance) -> Tensor:
    """R of one weight under its quantizer (see the module docstring); `variance` sums the per-bin variances."""
    clipped, quantized, bins = bin_codes(weight, quantizer)
    num_bins = clipped.shape[0] * (quantizer.quant_max - quantizer.quant_min + 1)
    return (clipped - quantized).square().mean() + variance(clipped, bins, num_bins)


def oscillation_regularizer(pairs: Iterable[tuple[Tensor, BaseQuantizer]], variance: Callable = bin_variance) -> Tensor:
    """Sum of `oscillation_loss` over (weight, quantizer) pairs."""
    return sum((oscillation_loss(w, q, variance) for w, q in pairs), torch.zeros(()))


def cosine_ramp(progress: float, final: float = 0.01, start: float = 0.25) -> float:
    """The regulariser's weight: 0 until `start` (a fraction of training), then a cosine rise to `final` at 1."""
    if progress <= start:
        return 0.0
    t = min((progress - start) / (1.0 - start), 1.0)
    return final * 0.5 * (1.0 - math.cos(math.pi * t))
