"""Exportable copies of quantized models: each quantizer and quantized layer replaced by its export rule.

A rule turns a module into one that computes the same values through `mmvitq.deploy.ops` (which the ONNX
exporter translates to QuantizeLinear/DequantizeLinear): static quantizers become `QDQ` (per tensor, or per
axis: per-head scales are repeated over their channels), per-token ones `TokenQDQ`, log2 ones `Log2QDQ`,
and QuantLinear/QuantConv2d store their weights as integer codes (`ExportLinear`, `ExportConv2d`). Rules are
looked up by class along its MRO; `register_export_rule` adds one for a new quantizer or layer. Every
quantized point is listed in `exportable`'s report.
"""
import copy
from typing import Callable, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..models import QuantConv2d, QuantLinear
from ..ops.reference import kernel_qparams
from ..quantizers import BaseQuantizer, Log2Quantizer, LSQQuantizer, UniformQuantizer
from . import ops
from .pack import weight_codes

#: An export rule: (module, its path, the input shapes of every quantizer by module, the report) -> replacement.
ExportRule = Callable[[nn.Module, str, dict, list], nn.Module]
EXPORT_RULES: dict[type, ExportRule] = {}


class ExportError(ValueError):
    """A model that cannot be exported: float, uncalibrated, or holding a module without an export rule."""


def register_export_rule(*classes: type) -> Callable[[ExportRule], ExportRule]:
    """Register `rule` for modules of `classes` (and their subclasses, unless they have a rule of their own)."""

    def register(rule: ExportRule) -> ExportRule:
        for cls in classes:
            EXPORT_RULES[cls] = rule
        return rule

    return register


def find_rule(cls: type) -> Optional[ExportRule]:
    return next((EXPORT_RULES[c] for c in cls.__mro__ if c in EXPORT_RULES), None)


def onnx_type_name(quant_min: int, quant_max: int, activation: bool = False) -> str:
    return f"{'int' if quant_min < 0 else 'uint'}{ops.onnx_type_bits(quant_min, quant_max, activation)}"


def _activation_type(quantizer: BaseQuantizer) -> str:
    name = onnx_type_name(quantizer.quant_min, quantizer.quant_max, activation=True)
    return name if quantizer.granularity == 'tensor' else name + ', rescaled per axis'


def _code_dtype(quant_min: int) -> torch.dtype:
    """The torch container of the codes and zero points: int8 for signed grids, uint8 for unsigned ones."""
    return torch.int8 if quant_min < 0 else torch.uint8


def _check_calibrated(quantizer: BaseQuantizer, path: str) -> None:
    if not quantizer.calibrated:
        raise ExportError(f'{path}: {type(quantizer).__name__}({quantizer.extra_repr()}) is not calibrated; export a '
                          'calibrated checkpoint (e.g. the ptq_<bits>.pth / gplq_<bits>.pth that the test loops save)')


def _qparams(quantizer: BaseQuantizer, channels: Optional[int]) -> tuple[Tensor, Tensor]:
    """Scale and integral zero point as the kernels use them: 0-d per tensor, else one per channel of the axis
    (a per-head quantizer's scales repeated over each head's channels)."""
    scale, zero = kernel_qparams(quantizer.scale.detach(), quantizer.zero_point.detach(), quantizer.quant_min,
                                 quantizer.quant_max)
    if quantizer.granularity == 'tensor':
        return scale.reshape(()), zero.reshape(())
    if quantizer.granularity == 'head':
        scale = scale.repeat_interleave(channels // scale.numel())
        zero = zero.repeat_interleave(channels // zero.numel())
    return scale, zero


def _point(report: list, path: str, kind: str, quantizer: BaseQuantizer, **extra) -> None:
    report.append(dict(path=path, kind=kind, quantizer=type(quantizer).__name__, bits=int(quantizer.bits),
                       granularity=quantizer.granularity, symmetric=bool(quantizer.symmetric),
                       onnx_type=onnx_type_name(quantizer.quant_min, quantizer.quant_max), **extra))


class QDQ(nn.Module):
    """A static uniform quantizer as QuantizeLinear -> DequantizeLinear.

    Per tensor, that pair carries the quantizer's scale and zero point. Per channel (or head), an activation is
    rescaled to its integer grid first, t = x / s_c + z_c in float, quantized per tensor with scale 1 and zero
    point 0, and mapped back, (q - z_c) * s_c: the same integers. onnxruntime (1.32) would fuse a per-axis
    activation DequantizeLinear into MatMulIntegerToFloat, which then fails at run time ("Per-Channel is not
    supported yet"); in this form the point stays a simulated one, which every runtime runs.
    """

    def __init__(self, quantizer: BaseQuantizer, shape: torch.Size) -> None:
        super().__init__()
        axis = quantizer.ch_axis % len(shape) if quantizer.granularity != 'tensor' else None
        scale, zero = _qparams(quantizer, None if axis is None else shape[axis])
        self.quant_min, self.quant_max = quantizer.quant_min, quantizer.quant_max
        code = _code_dtype(self.quant_min)
        self.rescaled = axis is not None
        if self.rescaled:
            view = [-1] + [1] * (len(shape) - 1 - axis)
            self.register_buffer('channel_scale', scale.reshape(view))
            self.register_buffer('channel_inverse', (1.0 / scale).reshape(view))
            self.register_buffer('channel_zero', zero.reshape(view))
            scale, zero = torch.ones(()), torch.zeros(())
        self.register_buffer('scale', scale)
        self.register_buffer('zero_point', zero.to(code))
        # A grid narrower than its ONNX type (2-3, 5-7 bits) is clipped first: the same integers, in QDQ's terms.
        self.narrow = (self.quant_min, self.quant_max) != ops.type_range(self.quant_min, self.quant_max, True)
        if self.narrow:
            self.register_buffer('low', (self.quant_min - zero) * scale)
            self.register_buffer('high', (self.quant_max - zero) * scale)

    def forward(self, x: Tensor) -> Tensor:
        if self.rescaled:
            x = x * self.channel_inverse + self.channel_zero
        if self.narrow:
            x = torch.minimum(torch.maximum(x, self.low), self.high)
        y = torch.ops.mmvitq.quantize_dequantize(x, self.scale, self.zero_point, 0, self.quant_min, self.quant_max)
        return (y - self.channel_zero) * self.channel_scale if self.rescaled else y


class TokenQDQ(nn.Module):
    """A per-token (dynamic) quantizer: its scales are computed in the graph from each row."""

    def __init__(self, quantizer: BaseQuantizer) -> None:
        super().__init__()
        self.quant_min, self.quant_max, self.symmetric = quantizer.quant_min, quantizer.quant_max, quantizer.symmetric

    def forward(self, x: Tensor) -> Tensor:
        return torch.ops.mmvitq.quantize_dequantize_token(x, self.quant_min, self.quant_max, self.symmetric)


class Log2QDQ(nn.Module):
    """The log2 / log-sqrt2 quantizer in ONNX ops."""

    def __init__(self, quantizer: Log2Quantizer) -> None:
        super().__init__()
        self.register_buffer('scale', quantizer.scale.detach().float().reshape(()))
        self.quant_max = quantizer.quant_max
        self.codes_per_octave = 1.0 if quantizer.base == '2' else 2.0

    def forward(self, x: Tensor) -> Tensor:
        return torch.ops.mmvitq.quantize_dequantize_log2(x, self.scale, self.quant_max, self.codes_per_octave)


@register_export_rule(UniformQuantizer, LSQQuantizer, Log2Quantizer)
def export_quantizer(quantizer: BaseQuantizer, path: str, shapes: dict, report: list) -> nn.Module:
    """An activation quantizer's exportable twin (identity when disabled)."""
    if not quantizer.enabled:
        return nn.Identity()
    _check_calibrated(quantizer, path)
    _point(report, path, 'activation', quantizer)
    report[-1]['onnx_type'] = _activation_type(quantizer)
    if quantizer.granularity == 'token':
        return TokenQDQ(quantizer)
    if isinstance(quantizer, Log2Quantizer):
        report[-1]['onnx_type'] = 'float (log2 levels)'
        return Log2QDQ(quantizer)
    if quantizer not in shapes and quantizer.granularity == 'head':
        raise ExportError(f'{path}: a per-head quantizer that the example input did not reach')
    return QDQ(quantizer, shapes.get(quantizer, torch.Size([quantizer.scale.numel()])))


def _input_quantizer(module: nn.Module, path: str, shapes: dict, report: list) -> nn.Module:
    quantizer = module.input_quant
    if quantizer is None:
        return nn.Identity()
    rule = find_rule(type(quantizer))
    if rule is None:
        raise ExportError(f'{path}.input_quant: no export rule for {type(quantizer).__name__}; register one with '
                          'mmvitq.deploy.register_export_rule')
    return rule(quantizer, f'{path}.input_quant', shapes, report)


class _Weight(nn.Module):
    """A layer weight as integer codes (DequantizeLinear in ONNX), or as float when it is not quantized."""

    def __init__(self, weight: Tensor, quantizer: Optional[BaseQuantizer], path: str, report: list,
                 transpose: bool) -> None:
        super().__init__()
        weight = weight.detach()
        if quantizer is None or not quantizer.enabled:
            self.quantized = False
            self.register_buffer('weight', weight.t().contiguous() if transpose else weight.clone())
            return
        _check_calibrated(quantizer, path)
        if quantizer.granularity == 'token':
            raise ExportError(f'{path}: a per-token weight quantizer has no static codes')
        codes, axis = weight_codes(quantizer, weight)
        scale, zero = _qparams(quantizer, None if axis is None else weight.shape[axis])
        codes = codes.to(_code_dtype(quantizer.quant_min))
        axis = axis or 0
        if transpose:  # [out, in] -> [in, out]: DequantizeLinear feeds MatMul directly, as integer fusions need
            codes, axis = codes.t().contiguous(), 1 - axis if scale.dim() else 0
        self.quantized, self.axis = True, axis
        self.quant_min, self.quant_max = quantizer.quant_min, quantizer.quant_max
        self.register_buffer('codes', codes)
        self.register_buffer('scale', scale)
        self.register_buffer('zero_point', zero.to(codes.dtype))
        _point(report, path, 'weight', quantizer, shape=list(weight.shape))

    def forward(self) -> Tensor:
        if not self.quantized:
            return self.weight
        return torch.ops.mmvitq.dequantize(self.codes, self.scale, self.zero_point, self.axis, self.quant_min,
                                           self.quant_max)


class ExportLinear(nn.Module):
    """QuantLinear as QDQ(input) @ DequantizeLinear(codes) + bias."""

    def __init__(self, linear: QuantLinear, path: str, shapes: dict, report: list) -> None:
        super().__init__()
        self.input_quant = _input_quantizer(linear, path, shapes, report)
        self.weight = _Weight(linear.weight, linear.weight_quant, f'{path}.weight_quant', report, transpose=True)
        self.register_buffer('bias', None if linear.bias is None else linear.bias.detach().clone())

    def forward(self, x: Tensor) -> Tensor:
        y = torch.matmul(self.input_quant(x), self.weight())
        return y if self.bias is None else y + self.bias


class ExportConv2d(nn.Module):
    """QuantConv2d (the patch embedding) as a convolution of QDQ(input) with DequantizeLinear(codes)."""

    def __init__(self, conv: QuantConv2d, path: str, shapes: dict, report: list) -> None:
        super().__init__()
        if conv.padding_mode != 'zeros':
            raise ExportError(f"{path}: padding_mode {conv.padding_mode!r} has no export rule (only 'zeros')")
        self.input_quant = _input_quantizer(conv, path, shapes, report)
        self.weight = _Weight(conv.weight, conv.weight_quant, f'{path}.weight_quant', report, transpose=False)
        self.register_buffer('bias', None if conv.bias is None else conv.bias.detach().clone())
        self.stride, self.padding, self.dilation, self.groups = conv.stride, conv.padding, conv.dilation, conv.groups

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(self.input_quant(x), self.weight(), self.bias, self.stride, self.padding, self.dilation,
                        self.groups)


register_export_rule(QuantLinear)(ExportLinear)
register_export_rule(QuantConv2d)(ExportConv2d)


def _input_shapes(model: nn.Module, run: Callable[[nn.Module], object]) -> dict:
    """{quantizer: the shape of its input} from one run of `model`."""
    shapes, handles = {}, []

    def record(module: nn.Module, args: tuple) -> None:
        shapes.setdefault(module, args[0].shape)

    for module in model.modules():
        if isinstance(module, BaseQuantizer):
            handles.append(module.register_forward_pre_hook(record))
    try:
        with torch.no_grad():
            run(model)
    finally:
        for handle in handles:
            handle.remove()
    return shapes


def _convert(module: nn.Module, prefix: str, shapes: dict, report: list) -> None:
    for name, child in list(module.named_children()):
        path = f'{prefix}{name}'
        rule = find_rule(type(child))
        if rule is not None:
            setattr(module, name, rule(child, path, shapes, report))
        elif isinstance(child, BaseQuantizer):
            raise ExportError(f'{path}: no export rule for {type(child).__name__}; register one with '
                              'mmvitq.deploy.register_export_rule')
        else:
            _convert(child, f'{path}.', shapes, report)


def check_exportable(model: nn.Module) -> None:
    """Raise ExportError naming the module when `model` has no quantizer (a float model), an attention without an
    export rule, or a quantizer that is not calibrated; before any work or file."""
    quantizers = {path: m for path, m in model.named_modules() if isinstance(m, BaseQuantizer)}
    if not quantizers:
        raise ExportError(f'{type(model).__name__} has no quantizer: a float model (use a quantized config: '
                          'a Quant* backbone or a method model)')
    routed = [path for path, m in model.named_modules() if hasattr(m, '_mmvitq_routers')]
    if routed:
        raise ExportError(f'{routed[0]} ({type(model.get_submodule(routed[0])).__name__}): attentions that run their '
                          'own forward with routed matmuls (SwinV2, BEiT, EVA02: mmvitq.models.rules.routed) have no '
                          'export rule yet')
    uncalibrated = [path for path, m in quantizers.items() if m.enabled and not m.calibrated]
    if uncalibrated:  # before any example run, whose first batch would calibrate them
        _check_calibrated(quantizers[uncalibrated[0]], f'{uncalibrated[0]} (and {len(uncalibrated) - 1} more)')


def exportable(model: nn.Module, run: Callable[[nn.Module], object]) -> tuple[nn.Module, list[dict]]:
    """A copy of `model` (eval mode) in which every quantizer and quantized layer is its export rule's module,
    and the list of its quantized points. `run(model)` runs one example forward (to learn activation shapes).

    Raises ExportError naming the module (see `check_exportable`, and a quantizer without an export rule).
    """
    check_exportable(model)
    model = copy.deepcopy(model).eval()
    shapes = _input_shapes(model, run)
    report: list[dict] = []
    _convert(model, '', shapes, report)
    if not report:
        raise ExportError(f'{type(model).__name__}: every quantizer is disabled; nothing would be quantized')
    return model, report
