"""The quantization steps of an exportable model as torch.library ops, and their ONNX translations.

Each op runs eagerly with the same kernels as the fake-quant model (so the exportable copy gives the same
outputs bit for bit) and is opaque to torch.export; `ONNX_TRANSLATIONS` turns it into standard ONNX (opset 21):

- `mmvitq::quantize_dequantize`: QuantizeLinear -> DequantizeLinear with the quantizer's scale and zero point,
  in int4/uint4 for 4 bits and int8/uint8 otherwise. A range narrower than its type (2-3 or 5-7 bits) is clipped
  before, in the exportable module, to [(qmin - z) s, (qmax - z) s], which gives the same integers.
- `mmvitq::dequantize`: DequantizeLinear of stored integer weights (codes), int4/uint4 for 2-4 bits, int8/uint8
  for 5-8 bits.
- `mmvitq::quantize_dequantize_token`: per-row dynamic scales from ReduceMin/ReduceMax, then the same math in
  float ops (no QDQ type carries a per-row scale).
- `mmvitq::quantize_dequantize_log2`: the log2 / log-sqrt2 quantizer from Log, Round, Pow and Where.

4-bit codes and zero points travel as int8 tensors and are cast to int4/uint4 inside the graph; the exporter
folds those casts of constants into 4-bit initializers (`mmvitq.deploy.onnx_export`).
"""
import math

import torch
from torch import Tensor

from ..ops import fake_quant_per_channel, fake_quant_per_tensor, fake_quant_per_token
from ..ops.reference import MAX_SCALE, MIN_SCALE


def _full_range(bits: int, signed: bool) -> tuple[int, int]:
    return (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)


def onnx_type_bits(quant_min: int, quant_max: int, activation: bool = False) -> int:
    """The width of the ONNX integer type of a [quant_min, quant_max] grid: 4 or 8 (signed when quant_min < 0).

    Weights take int4/uint4 whenever their codes fit. Activations take a 4-bit type only for the full 4-bit
    range: a narrower one (2-3 bits) is clipped before QuantizeLinear, and onnxruntime 1.32's Clip/QuantizeLinear
    fusion fails on 4-bit zero points, so those grids use the 8-bit types.
    """
    if activation:
        return 4 if (quant_min, quant_max) == _full_range(4, quant_min < 0) else 8
    return 4 if quant_max - quant_min + 1 <= 16 else 8


def type_range(quant_min: int, quant_max: int, activation: bool = False) -> tuple[int, int]:
    """The full range of that type."""
    return _full_range(onnx_type_bits(quant_min, quant_max, activation), quant_min < 0)


@torch.library.custom_op('mmvitq::quantize_dequantize', mutates_args=())
def quantize_dequantize(x: Tensor, scale: Tensor, zero_point: Tensor, axis: int, quant_min: int,
                        quant_max: int) -> Tensor:
    """Fake-quantize `x` with a 0-d scale (per tensor) or a 1-d one along `axis`; `zero_point` is integral."""
    zero = zero_point.float()
    if scale.dim() == 0:
        return fake_quant_per_tensor(x, scale.reshape(1), zero.reshape(1), quant_min, quant_max)
    return fake_quant_per_channel(x, scale, zero, axis, quant_min, quant_max)


@quantize_dequantize.register_fake
def _(x: Tensor, scale: Tensor, zero_point: Tensor, axis: int, quant_min: int, quant_max: int) -> Tensor:
    return torch.empty_like(x)


@torch.library.custom_op('mmvitq::dequantize', mutates_args=())
def dequantize(codes: Tensor, scale: Tensor, zero_point: Tensor, axis: int, quant_min: int,
               quant_max: int) -> Tensor:
    """(codes - zero_point) * scale, float32; scale and zero point 0-d or 1-d along `axis`."""
    shape = [1] * codes.dim()
    if scale.dim():
        shape[axis] = -1
    return (codes.float() - zero_point.float().reshape(shape)) * scale.reshape(shape)


@dequantize.register_fake
def _(codes: Tensor, scale: Tensor, zero_point: Tensor, axis: int, quant_min: int, quant_max: int) -> Tensor:
    return torch.empty(codes.shape, dtype=torch.float32, device=codes.device)


@torch.library.custom_op('mmvitq::quantize_dequantize_token', mutates_args=())
def quantize_dequantize_token(x: Tensor, quant_min: int, quant_max: int, symmetric: bool) -> Tensor:
    """Per-token (per row of the last dim) dynamic fake quantization."""
    return fake_quant_per_token(x, quant_min, quant_max, symmetric)


@quantize_dequantize_token.register_fake
def _(x: Tensor, quant_min: int, quant_max: int, symmetric: bool) -> Tensor:
    return torch.empty_like(x)


@torch.library.custom_op('mmvitq::quantize_dequantize_log2', mutates_args=())
def quantize_dequantize_log2(x: Tensor, scale: Tensor, quant_max: int, codes_per_octave: float) -> Tensor:
    """Log quantization: levels scale * 2^(-code / codes_per_octave), codes 0..quant_max - 1; the rest maps to 0."""
    xf, s = x.float(), scale.float().clamp(MIN_SCALE, MAX_SCALE)
    code = torch.round(-torch.log2(xf / s) * codes_per_octave)
    level = torch.exp2(-code.clamp_min(0) / codes_per_octave) * s
    return torch.where(code < quant_max, level, torch.zeros_like(level)).to(x.dtype)


@quantize_dequantize_log2.register_fake
def _(x: Tensor, scale: Tensor, quant_max: int, codes_per_octave: float) -> Tensor:
    return torch.empty_like(x)


def _translations() -> dict:
    """{op overload: onnxscript function}, imported only when exporting (onnxscript is not needed otherwise)."""
    from onnxscript import ir
    from onnxscript import opset21 as op

    def onnx_type(quant_min: int, quant_max: int, activation: bool) -> 'ir.DataType':
        signed, four = quant_min < 0, onnx_type_bits(quant_min, quant_max, activation) == 4
        return {(True, True): ir.DataType.INT4, (False, True): ir.DataType.UINT4,
                (True, False): ir.DataType.INT8, (False, False): ir.DataType.UINT8}[signed, four]

    def as_type(tensor, quant_min: int, quant_max: int, activation: bool = False):
        """An int8/uint8 tensor as the op's ONNX type (a Cast only for 4-bit types, folded on constants)."""
        target = onnx_type(quant_min, quant_max, activation)
        return tensor if target in (ir.DataType.INT8, ir.DataType.UINT8) else op.Cast(tensor, to=target)

    def qdq(x, scale, zero_point, axis: int, quant_min: int, quant_max: int):
        zero_point = as_type(zero_point, quant_min, quant_max, activation=True)
        return op.DequantizeLinear(op.QuantizeLinear(x, scale, zero_point, axis=axis), scale, zero_point, axis=axis)

    def dq(codes, scale, zero_point, axis: int, quant_min: int, quant_max: int):
        return op.DequantizeLinear(as_type(codes, quant_min, quant_max), scale,
                                   as_type(zero_point, quant_min, quant_max), axis=axis)

    def token(x, quant_min: int, quant_max: int, symmetric: bool):
        axes = op.Constant(value_ints=[-1])
        zero = op.Constant(value_float=0.0)
        lo = op.Min(op.ReduceMin(x, axes, keepdims=1), zero)
        hi = op.Max(op.ReduceMax(x, axes, keepdims=1), zero)
        smallest, largest = op.Constant(value_float=MIN_SCALE), op.Constant(value_float=MAX_SCALE)
        qmin, qmax = op.Constant(value_float=float(quant_min)), op.Constant(value_float=float(quant_max))
        if symmetric:
            scale = op.Clip(op.Div(op.Max(op.Neg(lo), hi), qmax), smallest, largest)
            z = zero
        else:
            scale = op.Clip(op.Div(op.Sub(hi, lo), op.Sub(qmax, qmin)), smallest, largest)
            z = op.Clip(op.Sub(qmin, op.Round(op.Div(lo, scale))), qmin, qmax)
        q = op.Clip(op.Add(op.Round(op.Mul(x, op.Reciprocal(scale))), z), qmin, qmax)
        return op.Mul(op.Sub(q, z), scale)

    def log2(x, scale, quant_max: int, codes_per_octave: float):
        s = op.Clip(scale, op.Constant(value_float=MIN_SCALE), op.Constant(value_float=MAX_SCALE))
        per_nat = op.Constant(value_float=-codes_per_octave / math.log(2.0))
        code = op.Round(op.Mul(op.Log(op.Div(x, s)), per_nat))
        exponent = op.Div(op.Neg(op.Max(code, op.Constant(value_float=0.0))),
                          op.Constant(value_float=codes_per_octave))
        level = op.Mul(op.Pow(op.Constant(value_float=2.0), exponent), s)
        return op.Where(op.Less(code, op.Constant(value_float=float(quant_max))), level,
                        op.Constant(value_float=0.0))

    return {torch.ops.mmvitq.quantize_dequantize.default: qdq, torch.ops.mmvitq.dequantize.default: dq,
            torch.ops.mmvitq.quantize_dequantize_token.default: token,
            torch.ops.mmvitq.quantize_dequantize_log2.default: log2}
