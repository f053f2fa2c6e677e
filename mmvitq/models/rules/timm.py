"""Rules for timm's VisionTransformer and SwinTransformer: attention (fused SDPA rewritten to quantized
matmuls), Mlp, PatchEmbed, classifier head."""
from typing import Optional

from timm.layers import ClassifierHead, Mlp, PatchEmbed
from timm.layers.attention import Attention
from timm.models.swin_transformer import SwinTransformerBlock, WindowAttention
from timm.models.vision_transformer import Block, VisionTransformer
from torch import Tensor, nn

from ..modules import QuantAttentionCore
from .base import CoreFactory, FamilyRule
from .window_msa import QuantWindowAttention


class QuantTimmAttention(nn.Module):
    """Takes over a timm Attention's submodules (same state-dict keys) with explicit quantized matmuls."""

    def __init__(self, attn: Attention, core: QuantAttentionCore):
        super().__init__()
        self.num_heads, self.head_dim, self.attn_dim, self.scale = (attn.num_heads, attn.head_dim, attn.attn_dim,
                                                                    attn.scale)
        self.qkv, self.q_norm, self.k_norm, self.attn_drop = attn.qkv, attn.q_norm, attn.k_norm, attn.attn_drop
        self.norm, self.gate, self.proj, self.proj_drop = attn.norm, attn.gate, attn.proj, attn.proj_drop
        self.core = core
        self.train(attn.training)

    def forward(self, x: Tensor, attn_mask: Optional[Tensor] = None, is_causal: bool = False) -> Tensor:
        B, N, _ = x.shape
        gate = self.gate(x).sigmoid() if self.gate is not None else None
        q, k, v = self.qkv(x).reshape(B, N, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4).unbind(0)
        q, k = self.q_norm(q), self.k_norm(k)
        x = self.core(q, k, v, attn_mask=attn_mask, dropout_p=self.attn_drop.p if self.training else 0.0,
                      is_causal=is_causal, scale=self.scale)
        x = self.norm(x.transpose(1, 2).reshape(B, N, self.attn_dim))
        if gate is not None:
            x = x * gate
        return self.proj_drop(self.proj(x))


class TimmRule(FamilyRule):

    def layer_types(self, module: nn.Module) -> dict[str, tuple[str, int]]:
        if isinstance(module, Attention):
            types = {'qkv': ('qkv', module.num_heads), 'proj': ('proj', module.num_heads)}
            return {**types, 'gate': ('linear', 1)} if module.gate is not None else types
        if isinstance(module, WindowAttention):
            return {'qkv': ('qkv', module.num_heads), 'proj': ('proj', module.num_heads)}
        if isinstance(module, Mlp):
            return {'fc1': ('fc1', 1), 'fc2': ('fc2', 1)}
        if isinstance(module, PatchEmbed):
            return {'proj': ('patch_embed', 1)}
        if isinstance(module, VisionTransformer) and isinstance(module.head, nn.Linear):
            return {'head': ('head', 1)}
        if isinstance(module, ClassifierHead) and isinstance(module.fc, nn.Linear):
            return {'fc': ('head', 1)}
        return {}

    def norm_consumers(self, module: nn.Module) -> dict[str, tuple[str, ...]]:
        if isinstance(module, (Block, SwinTransformerBlock)):
            return {'norm1': ('attn.qkv', ), 'norm2': ('mlp.fc1', )}
        return {}

    def quantize_attention(self, path: str, module: nn.Module, make_core: CoreFactory) -> Optional[nn.Module]:
        if isinstance(module, Attention):
            return QuantTimmAttention(module, make_core(path + '.core', module.num_heads))
        if isinstance(module, WindowAttention):
            return QuantWindowAttention(module, make_core(path + '.core', module.num_heads))
        return None
