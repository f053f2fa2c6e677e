"""Quantized modules, the qconfig and quantize_model (the quantized OpenMMLab backbones: `mmvitq.models.backbones`)."""
from .modules import QuantAttentionCore, QuantConv2d, QuantLinear, QuantMatMul
from .qconfig import QConfig
from .quantize import bits_tag, quantization_points, quantize_model, quantized_layers

__all__ = [
    'QConfig', 'quantize_model', 'quantization_points', 'quantized_layers', 'bits_tag', 'QuantLinear', 'QuantConv2d',
    'QuantMatMul', 'QuantAttentionCore'
]
