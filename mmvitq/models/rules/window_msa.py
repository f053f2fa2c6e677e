"""Swin window attention (mmpretrain's and mmdet's WindowMSA, timm's WindowAttention) with quantized matmuls.

The three share their state (qkv, proj, relative position bias table and index) and their math; only
the forward is replaced, by one that routes q @ k^T and attn @ v through a QuantAttentionCore.
"""
from typing import Optional

from torch import Tensor, nn

from ..modules import QuantAttentionCore


class QuantWindowAttention(nn.Module):
    """Takes over a window attention's submodules and parameters (same state-dict keys) and its forward."""

    def __init__(self, attn: nn.Module, core: QuantAttentionCore):
        super().__init__()
        self.num_heads, self.scale = attn.num_heads, attn.scale
        self.relative_position_bias_table = attn.relative_position_bias_table
        self.register_buffer('relative_position_index', attn.relative_position_index,
                             persistent='relative_position_index' not in attn._non_persistent_buffers_set)
        self.qkv, self.attn_drop, self.proj, self.proj_drop = attn.qkv, attn.attn_drop, attn.proj, attn.proj_drop
        self.core = core
        self.train(attn.training)

    def forward(self, x: Tensor, mask: Optional[Tensor] = None) -> Tensor:
        B, N, _ = x.shape
        q, k, v = self.qkv(x).reshape(B, N, 3, self.num_heads, -1).permute(2, 0, 3, 1, 4).unbind(0)
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)].view(N, N, -1)
        bias = bias.permute(2, 0, 1).unsqueeze(0)
        if mask is not None:  # (num_windows, N, N) shift mask, repeated over the batch
            nw = mask.shape[0]
            bias = (bias.unsqueeze(1) + mask.view(1, nw, 1, N, N)).expand(B // nw, -1, -1, -1, -1)
            bias = bias.reshape(B, self.num_heads, N, N)
        x = self.core(q, k, v, attn_mask=bias, dropout_p=self.attn_drop.p if self.training else 0.0,
                      scale=self.scale)
        return self.proj_drop(self.proj(x.transpose(1, 2).reshape(B, N, -1)))
