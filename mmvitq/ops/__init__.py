"""Fused fake-quantization ops (C++/CUDA kernels with a PyTorch reference fallback)."""
from .compact import compact_activations
from .fake_quant import (backend, fake_quant_per_channel, fake_quant_per_head, fake_quant_per_tensor,
                         fake_quant_per_token, quant_range)

__all__ = ['backend', 'compact_activations', 'fake_quant_per_tensor', 'fake_quant_per_channel', 'fake_quant_per_head',
           'fake_quant_per_token', 'quant_range']
