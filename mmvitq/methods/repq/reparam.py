"""RepQ-ViT's scale reparameterisation: per-channel post-LayerNorm activation ranges, run per tensor.

The input of a linear that reads a LayerNorm (qkv, fc1) has a few channels with ranges far wider than
the rest, which one per-tensor scale serves badly. RepQ-ViT calibrates that input per channel (scale
s_c, zero point z_c), then folds the per-channel part into the LayerNorm's affine and the linear's
weight, so that one per-tensor scale s = mean(s_c) and zero point z = round(mean(z_c)) give exactly the
integers of the per-channel quantizer:

    r1 = s_c / s,  r2 = z_c - z
    LayerNorm:  gamma' = gamma / r1,   beta' = (beta + s_c * r2) / r1
    Linear:     W' = W * r1 (per input channel),   b' = b - W @ (s_c * r2)

The float function is unchanged (Swin's zero padding after the norm aside); the linears' weight
quantizers are recalibrated on W'.
"""
from contextlib import contextmanager
from typing import Iterator

import torch
from torch import Tensor, nn

from ...models.rules import norm_consumers
from ...quantizers import BaseQuantizer
from ...quantizers.observers import Observer


def _foldable(model: nn.Module, norm: str, linears: tuple[str, ...]) -> bool:
    """An affine LayerNorm read only by linears with alike, per-tensor input quantizers (and a bias to take the
    zero-point shift, unless symmetric)."""
    ln = model.get_submodule(norm)
    if not isinstance(ln, nn.LayerNorm) or ln.weight is None or ln.bias is None:
        return False
    modules = [model.get_submodule(p) for p in linears]
    quants = [getattr(m, 'input_quant', None) for m in modules]
    if not all(isinstance(q, BaseQuantizer) and q.granularity == 'tensor' and q.enabled for q in quants):
        return False
    alike = len({(type(q), q.quant_min, q.quant_max) for q in quants}) == 1
    return alike and (quants[0].symmetric or all(m.bias is not None for m in modules))


@contextmanager
def observe_post_norm_channels(model: nn.Module) -> Iterator[dict[str, tuple[tuple[str, ...], Observer]]]:
    """While open, every batch through `model` feeds per-channel range observers of each foldable post-norm input.

    Yields {norm path: (linear paths, observer)}; each observer is made by the first linear's input
    quantizer, so it has that quantizer's range rule (min-max, percentile, MSE) and bit-width.
    """
    stats, handles = {}, []
    for norm, linears in norm_consumers(model).items():
        if not _foldable(model, norm, linears):
            continue
        observer = model.get_submodule(linears[0]).input_quant.make_observer()
        stats[norm] = (linears, observer)

        def hook(module: nn.Module, args: tuple, observer: Observer = observer) -> None:
            x = args[0].detach().float()
            observer.update(x.reshape(-1, x.shape[-1]).t())

        handles.append(model.get_submodule(linears[0]).register_forward_pre_hook(hook))
    try:
        yield stats
    finally:
        for handle in handles:
            handle.remove()


@torch.no_grad()
def fold_channel_qparams(model: nn.Module, norm: str, linears: tuple[str, ...], scale: Tensor,
                         zero_point: Tensor) -> None:
    """Fold per-channel input qparams (`scale`, `zero_point`, [C]) of `linears` into `norm` and them (see above)."""
    ln = model.get_submodule(norm)
    quant = model.get_submodule(linears[0]).input_quant
    s = scale.mean()
    z = zero_point.mean().round().clamp(quant.quant_min, quant.quant_max)
    r1, r2 = scale / s, zero_point - z
    shift = scale * r2
    ln.bias.copy_((ln.bias + shift.to(ln.bias)) / r1.to(ln.bias))
    ln.weight.copy_(ln.weight / r1.to(ln.weight))
    for path in linears:
        linear = model.get_submodule(path)
        w = linear.weight
        if linear.bias is not None:
            linear.bias.copy_(linear.bias - w @ shift.to(w))
        w.mul_(r1.to(w))
        linear.input_quant.set_qparams(s, z)
        if isinstance(linear.weight_quant, BaseQuantizer):
            linear.weight_quant.calibrate(w)
