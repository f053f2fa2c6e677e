"""Quantized modules, the qconfig, quantize_model and the quantized backbones."""
from .backbones import QuantDetSwinTransformer, QuantSwinTransformer, QuantVisionTransformer
from .modules import QuantAttentionCore, QuantConv2d, QuantLinear, QuantMatMul
from .qconfig import QConfig
from .quantize import bits_tag, quantize_model

__all__ = [
    'QConfig', 'quantize_model', 'bits_tag', 'QuantLinear', 'QuantConv2d', 'QuantMatMul', 'QuantAttentionCore',
    'QuantVisionTransformer', 'QuantSwinTransformer', 'QuantDetSwinTransformer'
]
