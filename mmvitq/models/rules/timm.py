"""Rules for timm's VisionTransformer, SwinTransformer, SwinTransformerV2, BEiT and EVA (EVA02): attention (fused
SDPA rewritten to quantized matmuls, or the family's own forward with routed matmuls), Mlp / SwiGLU / GluMlp,
PatchEmbed, classifier head."""
from typing import Optional

from timm.layers import ClassifierHead, GluMlp, Mlp, PatchEmbed, SwiGLU
from timm.layers.attention import Attention
from timm.models import beit, eva, swin_transformer_v2
from timm.models.swin_transformer import SwinTransformerBlock, WindowAttention
from timm.models.vision_transformer import Block, VisionTransformer
from torch import Tensor, nn

from ..modules import QuantAttentionCore
from . import register_rule
from .base import CoreFactory, FamilyRule
from .routed import route_attention
from .window_msa import QuantWindowAttention

#: Attentions whose own forward runs with routed matmuls (SwinV2 cosine attention, BEiT, EVA with RoPE).
ROUTED = (swin_transformer_v2.WindowAttention, beit.Attention, eva.EvaAttention)


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


@register_rule('timm')
class TimmRule(FamilyRule):

    def layer_types(self, module: nn.Module) -> dict[str, tuple[str, int]]:
        if isinstance(module, Attention):
            types = {'qkv': ('qkv', module.num_heads), 'proj': ('proj', module.num_heads)}
            return {**types, 'gate': ('linear', 1)} if module.gate is not None else types
        if isinstance(module, (WindowAttention, ) + ROUTED):
            types = {'qkv': ('qkv', module.num_heads), 'proj': ('proj', module.num_heads)}
            if getattr(module, 'qkv', None) is None:  # EVA with separate q, k, v projections
                types = {'q_proj': ('linear', 1), 'k_proj': ('linear', 1), 'v_proj': ('linear', 1),
                         'proj': ('proj', module.num_heads)}
            return {**types, 'gate': ('linear', 1)} if getattr(module, 'gate', None) is not None else types
        if isinstance(module, (Mlp, GluMlp)):
            return {'fc1': ('fc1', 1), 'fc2': ('fc2', 1)}
        if isinstance(module, SwiGLU):
            return {'fc1_g': ('fc1', 1), 'fc1_x': ('fc1', 1), 'fc2': ('fc2', 1)}
        if isinstance(module, PatchEmbed):
            return {'proj': ('patch_embed', 1)}
        if isinstance(module, VisionTransformer) and isinstance(module.head, nn.Linear):
            return {'head': ('head', 1)}
        if isinstance(module, ClassifierHead) and isinstance(module.fc, nn.Linear):
            return {'fc': ('head', 1)}
        return {}

    def norm_consumers(self, module: nn.Module) -> dict[str, tuple[str, ...]]:
        if isinstance(module, (Block, SwinTransformerBlock, beit.Block)):
            return {'norm1': ('attn.qkv', ), 'norm2': ('mlp.fc1', )}
        if isinstance(module, eva.EvaBlock) and module.attn.qkv is not None:
            fc1 = ('mlp.fc1_g', 'mlp.fc1_x') if isinstance(module.mlp, SwiGLU) else ('mlp.fc1', )
            return {'norm1': ('attn.qkv', ), 'norm2': fc1}
        return {}  # SwinV2 and EvaBlockPostNorm normalise after attention and MLP: no LayerNorm feeds a linear

    def quantize_attention(self, path: str, module: nn.Module, make_core: CoreFactory) -> Optional[nn.Module]:
        if isinstance(module, Attention):
            return QuantTimmAttention(module, make_core(path + '.core', module.num_heads))
        if isinstance(module, WindowAttention):
            return QuantWindowAttention(module, make_core(path + '.core', module.num_heads))
        if isinstance(module, ROUTED):
            return route_attention(module, make_core(path + '.core', module.num_heads))
        return None
