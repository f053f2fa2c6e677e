"""Swin window attention (mmpretrain's and mmdet's WindowMSA) with quantized q @ k^T and attn @ v."""
from typing import Optional

import torch
from torch import Tensor, nn

from ..modules import QuantMatMul


class QuantWindowMSA(nn.Module):
    """Takes over a WindowMSA's submodules and parameters (same state-dict keys) and its forward."""

    def __init__(self, msa: nn.Module, qk: QuantMatMul, av: QuantMatMul):
        super().__init__()
        self.embed_dims, self.window_size, self.num_heads = msa.embed_dims, msa.window_size, msa.num_heads
        self.scale = msa.scale
        self.relative_position_bias_table = msa.relative_position_bias_table
        self.register_buffer('relative_position_index', msa.relative_position_index,
                             persistent='relative_position_index' not in msa._non_persistent_buffers_set)
        self.qkv, self.attn_drop, self.proj, self.proj_drop = msa.qkv, msa.attn_drop, msa.proj, msa.proj_drop
        self.qk, self.av = qk, av
        self.train(msa.training)

    def forward(self, x: Tensor, mask: Optional[Tensor] = None) -> Tensor:
        B, N, C = x.shape
        q, k, v = self.qkv(x).reshape(B, N, 3, self.num_heads, C // self.num_heads).permute(2, 0, 3, 1, 4)
        attn = self.qk(q * self.scale, k.transpose(-2, -1))
        area = self.window_size[0] * self.window_size[1]
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)].view(area, area, -1)
        attn = attn + bias.permute(2, 0, 1).unsqueeze(0)
        if mask is not None:
            nw = mask.shape[0]
            attn = (attn.view(B // nw, nw, self.num_heads, N, N) + mask.unsqueeze(1).unsqueeze(0)).view(
                -1, self.num_heads, N, N)
        attn = self.attn_drop(torch.softmax(attn, dim=-1))
        x = self.av(attn, v).transpose(1, 2).reshape(B, N, C)
        return self.proj_drop(self.proj(x))
