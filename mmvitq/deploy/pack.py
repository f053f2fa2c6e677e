"""Packed checkpoints: each quantized layer's weight stored as its integer codes, several per byte.

A b-bit weight is stored in a container of 2, 4 or 8 bits (2-bit: four codes per byte; 3- and 4-bit: two;
5- to 8-bit: one), next to the quantizer's own scale and zero point, which the state dict holds anyway.
Unpacking gives back the fake-quantized weight (q - z) * s, which the weight quantizer maps to the same codes, so
the model computes exactly what it computed before packing.

The file holds one flat tensor per dtype (`blobs`) and, under `packed`, the index that cuts them back into the
state dict (key, dtype, shape; an all-zero tensor, such as a symmetric quantizer's zero point, by its shape
alone) and what unpacking each layer needs (bits, shape, code range, scale axis). Plain strings, ints and lists:
the file loads with torch.load(weights_only=True), and a few large records instead of one per tensor keep the
archive's per-record overhead out of its size.
"""
from typing import Optional

import torch
from torch import Tensor, nn

from ..models import quantized_layers
from ..ops.reference import kernel_qparams
from ..quantizers import BaseQuantizer

PACKED_KEY = 'packed'


def container_bits(bits: int) -> int:
    """The packing width of a `bits`-bit code: 2, 4 or 8."""
    return 2 if bits <= 2 else 4 if bits <= 4 else 8


def pack_codes(codes: Tensor, quant_min: int, width: int) -> Tensor:
    """Codes (ints in quant_min..quant_min + 2^width - 1) -> uint8 bytes, `8 // width` codes per byte, low first."""
    values = (codes.reshape(-1).to(torch.int16) - quant_min).to(torch.uint8)
    per_byte = 8 // width
    values = torch.cat([values, values.new_zeros(-len(values) % per_byte)]).reshape(-1, per_byte)
    shifts = torch.arange(per_byte, dtype=torch.uint8) * width
    return (values << shifts).sum(dim=1, dtype=torch.uint8)


def unpack_codes(packed: Tensor, quant_min: int, width: int, count: int) -> Tensor:
    """The inverse of `pack_codes`: the first `count` codes as int16."""
    per_byte = 8 // width
    shifts = torch.arange(per_byte, dtype=torch.uint8) * width
    values = (packed.reshape(-1, 1) >> shifts) & ((1 << width) - 1)
    return values.reshape(-1)[:count].to(torch.int16) + quant_min


def _along(values: Tensor, axis: Optional[int], shape: list) -> Tensor:
    """Per-scale `values` broadcast to a weight of `shape` (scales along `axis`, repeated when fewer, per head)."""
    if axis is None:
        return values.reshape(())
    view = [1] * len(shape)
    view[axis] = -1
    return values.repeat_interleave(shape[axis] // values.numel()).reshape(view)


def weight_codes(quantizer: BaseQuantizer, weight: Tensor) -> tuple[Tensor, Optional[int]]:
    """The integer codes (int16, the weight's shape) the quantizer gives `weight`, and its scale axis (None: one scale).

    Read back from the quantizer's own fake-quantized output, so they are exactly the model's.
    """
    axis = None if quantizer.granularity == 'tensor' else quantizer.ch_axis % weight.dim()
    scale, zero = kernel_qparams(quantizer.scale.detach(), quantizer.zero_point.detach(), quantizer.quant_min,
                                 quantizer.quant_max)
    scale, zero = _along(scale, axis, list(weight.shape)), _along(zero, axis, list(weight.shape))
    fake = quantizer.fake_quantize(weight.detach()).float()
    codes = (torch.round(fake * (1.0 / scale)) + zero).clamp(quantizer.quant_min, quantizer.quant_max)
    return codes.to(torch.int16), axis


def packed_layers(model: nn.Module) -> dict[str, nn.Module]:
    """{path: layer} of the layers whose weight is quantized (an enabled, calibrated, static weight quantizer)."""
    return {path: m for path, m in quantized_layers(model, enabled=True).items()
            if m.weight_quant.calibrated and m.weight_quant.granularity != 'token'}


def _flatten(state: dict) -> tuple[list, dict]:
    """(index, {dtype name: one flat tensor}) of a state dict; all-zero tensors are kept by their shape only."""
    index, parts = [], {}
    for key, value in state.items():
        dtype = str(value.dtype).removeprefix('torch.')
        zero = not bool(value.any()) if value.numel() else True
        index.append([key, dtype, list(value.shape), zero])
        if not zero:
            parts.setdefault(dtype, []).append(value.reshape(-1))
    return index, {dtype: torch.cat(values) for dtype, values in parts.items()}


def _unflatten(index: list, blobs: dict) -> dict:
    state, offsets = {}, {dtype: 0 for dtype in blobs}
    for key, dtype, shape, zero in index:
        count = 1
        for size in shape:
            count *= size
        if zero:
            state[key] = torch.zeros(shape, dtype=getattr(torch, dtype))
            continue
        state[key] = blobs[dtype][offsets[dtype]:offsets[dtype] + count].reshape(shape).clone()
        offsets[dtype] += count
    return state


def pack_state_dict(model: nn.Module, prefix: str = '') -> dict:
    """The packed form of `model`'s state dict (keys prefixed by `prefix`): {'packed': index, 'blobs': tensors}.
    Raises ValueError when the model has no calibrated quantized weight."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    layers = {}
    for path, layer in packed_layers(model).items():
        quantizer = layer.weight_quant
        codes, axis = weight_codes(quantizer, layer.weight)
        width = container_bits(int(quantizer.bits))
        del state[f'{path}.weight']
        state[f'{path}.weight_packed'] = pack_codes(codes.cpu(), quantizer.quant_min, width)
        layers[prefix + path] = dict(bits=int(quantizer.bits), width=width, shape=list(layer.weight.shape),
                                     quant_min=quantizer.quant_min, quant_max=quantizer.quant_max, axis=axis)
    if not layers:
        raise ValueError(f'{type(model).__name__} has no calibrated quantized weight to pack')
    index, blobs = _flatten({prefix + k: v for k, v in state.items()})
    return {PACKED_KEY: dict(layers=layers, index=index), 'blobs': blobs}


def unpack_state_dict(packed: dict, blobs: dict) -> dict:
    """The state dict of a packed checkpoint, with float weights (q - z) * s in place of the packed codes."""
    state = _unflatten(packed['index'], blobs)
    for path, layer in packed['layers'].items():
        codes = state.pop(f'{path}.weight_packed')
        count = 1
        for size in layer['shape']:
            count *= size
        codes = unpack_codes(codes, layer['quant_min'], layer['width'], count).reshape(layer['shape'])
        scale, zero = kernel_qparams(state[f'{path}.weight_quant.scale'], state[f'{path}.weight_quant.zero_point'],
                                     layer['quant_min'], layer['quant_max'])
        scale, zero = _along(scale, layer['axis'], layer['shape']), _along(zero, layer['axis'], layer['shape'])
        state[f'{path}.weight'] = (codes.float() - zero) * scale
    return state


def unpack_checkpoint(checkpoint: dict) -> dict:
    """A loaded checkpoint with its packed weights unpacked (one without packed weights is returned as it is)."""
    if not isinstance(checkpoint, dict) or PACKED_KEY not in checkpoint:
        return checkpoint
    state = unpack_state_dict(checkpoint[PACKED_KEY], checkpoint['blobs'])
    return {k: v for k, v in checkpoint.items() if k not in (PACKED_KEY, 'blobs')} | {'state_dict': state}
