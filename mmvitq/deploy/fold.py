"""Per-channel input scales folded into the LayerNorm before a linear, so that the linear runs on integer kernels.

An integer GEMM takes one scale per input tensor: a linear whose input is quantized per channel (GPLQ's default,
the per-channel PTQ baselines, LampQ's configs) stays a simulated point in ONNX. Where that input is a
LayerNorm's output (qkv, fc1), RepQ-ViT's reparameterisation (`mmvitq.methods.repq.fold_channel_qparams`) moves
the per-channel part into the LayerNorm's affine and the linear's weight and bias: the input quantizer becomes a
per-tensor one that gives the same integers, and the weight quantizer is recalibrated on the new weight. The
weight codes change, so the folded model is a close relative of the checkpoint, not the same numbers; export
reports both.
"""
import torch
from torch import nn

from ..methods.repq import fold_channel_qparams
from ..models.rules import norm_consumers
from ..ops.reference import kernel_qparams
from ..quantizers import LSQQuantizer, UniformQuantizer


def _per_channel_inputs(model: nn.Module, norm: str, linears: tuple[str, ...]) -> list:
    """The linears' input quantizers when they can be folded into `norm`: static, calibrated, per channel, alike."""
    if not isinstance(model.get_submodule(norm), nn.LayerNorm) or model.get_submodule(norm).weight is None:
        return []
    quants = [getattr(model.get_submodule(path), 'input_quant', None) for path in linears]
    if not all(isinstance(q, (UniformQuantizer, LSQQuantizer)) and q.granularity == 'channel' and q.enabled
               and q.calibrated for q in quants):
        return []
    first = quants[0]
    alike = all((q.quant_min, q.quant_max) == (first.quant_min, first.quant_max) and torch.equal(q.scale, first.scale)
                and torch.equal(q.zero_point, first.zero_point) for q in quants)
    has_bias = first.symmetric or all(model.get_submodule(path).bias is not None for path in linears)
    return quants if alike and has_bias else []


@torch.no_grad()
def fold_channel_inputs(model: nn.Module) -> list[str]:
    """Fold every foldable per-channel post-LayerNorm input of `model` in place; returns the folded linears."""
    folded = []
    for norm, linears in norm_consumers(model).items():
        quants = _per_channel_inputs(model, norm, linears)
        if not quants:
            continue
        first = quants[0]
        scale, zero = kernel_qparams(first.scale.detach(), first.zero_point.detach(), first.quant_min, first.quant_max)
        for path in linears:
            linear = model.get_submodule(path)
            linear.input_quant = UniformQuantizer(bits=int(first.bits), symmetric=first.symmetric).to(scale.device)
        fold_channel_qparams(model, norm, linears, scale, zero)
        folded.extend(linears)
    return folded
