"""Quantized building blocks: linear, conv and matmul whose inputs and weights pass through quantizers.

They share the float module's parameters (same state-dict keys), so float checkpoints load as they
are; a quantizer that is None, or disabled, leaves its tensor in float.
"""
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _maybe(quantizer: Optional[nn.Module], x: Tensor) -> Tensor:
    return x if quantizer is None else quantizer(x)


class QuantLinear(nn.Linear):
    """nn.Linear with an input quantizer and a weight quantizer; `module_type` is its qconfig type (qkv, fc1...)."""

    module_type = 'linear'

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 input_quant: Optional[nn.Module] = None, weight_quant: Optional[nn.Module] = None, **kwargs):
        super().__init__(in_features, out_features, bias, **kwargs)
        self.input_quant = input_quant
        self.weight_quant = weight_quant

    @classmethod
    def from_float(cls, linear: nn.Linear, input_quant: Optional[nn.Module],
                   weight_quant: Optional[nn.Module]) -> 'QuantLinear':
        """Wrap `linear`, sharing its weight and bias Parameters."""
        q = cls(linear.in_features, linear.out_features, linear.bias is not None, input_quant, weight_quant,
                device='meta')
        q.weight, q.bias = linear.weight, linear.bias
        return q.train(linear.training)

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_with_bias(x, self.bias)

    def forward_with_bias(self, x: Tensor, bias: Optional[Tensor]) -> Tensor:
        """The quantized linear with another bias (families that build qkv's bias from q and v biases)."""
        return F.linear(_maybe(self.input_quant, x), _maybe(self.weight_quant, self.weight), bias)


class QuantConv2d(nn.Conv2d):
    """nn.Conv2d (the patch embedding) with an input quantizer and a weight quantizer."""

    module_type = 'patch_embed'

    def __init__(self, *args, input_quant: Optional[nn.Module] = None, weight_quant: Optional[nn.Module] = None,
                 **kwargs):
        super().__init__(*args, **kwargs)
        self.input_quant = input_quant
        self.weight_quant = weight_quant

    @classmethod
    def from_float(cls, conv: nn.Conv2d, input_quant: Optional[nn.Module],
                   weight_quant: Optional[nn.Module]) -> 'QuantConv2d':
        """Wrap `conv`, sharing its weight and bias Parameters and hyper-parameters."""
        q = cls(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding, conv.dilation,
                conv.groups, conv.bias is not None, conv.padding_mode, input_quant=input_quant,
                weight_quant=weight_quant, device='meta')
        q.weight, q.bias = conv.weight, conv.bias
        return q.train(conv.training)

    def forward(self, x: Tensor) -> Tensor:
        return self._conv_forward(_maybe(self.input_quant, x), _maybe(self.weight_quant, self.weight), self.bias)


class QuantMatMul(nn.Module):
    """a @ b with both inputs quantized (q @ k^T, attn @ v); `module_type` is 'qk' or 'av'."""

    module_type = 'qk'

    def __init__(self, a_quant: Optional[nn.Module] = None, b_quant: Optional[nn.Module] = None):
        super().__init__()
        self.a_quant = a_quant
        self.b_quant = b_quant

    def forward(self, a: Tensor, b: Tensor) -> Tensor:
        return torch.matmul(_maybe(self.a_quant, a), _maybe(self.b_quant, b))


class QuantAttentionCore(nn.Module):
    """softmax(q k^T * scale + bias) v with quantized matmul inputs: replaces fused SDPA.

    Signature of torch.nn.functional.scaled_dot_product_attention, so it can stand where a model
    calls an SDPA function attribute; `q` is scaled before the matmul as timm and Swin do.
    """

    def __init__(self, qk: QuantMatMul, av: QuantMatMul):
        super().__init__()
        self.qk = qk
        self.av = av

    def forward(self, q: Tensor, k: Tensor, v: Tensor, attn_mask: Optional[Tensor] = None, dropout_p: float = 0.0,
                is_causal: bool = False, scale: Optional[float] = None) -> Tensor:
        if is_causal:
            raise NotImplementedError('causal attention is not used by the supported ViT families')
        attn = self.qk(q * (scale if scale is not None else q.shape[-1]**-0.5), k.transpose(-2, -1))
        if attn_mask is not None:
            attn = attn.masked_fill(~attn_mask, float('-inf')) if attn_mask.dtype == torch.bool else attn + attn_mask
        attn = attn.softmax(dim=-1)
        if dropout_p > 0:
            attn = F.dropout(attn, dropout_p)
        return self.av(attn, v)
