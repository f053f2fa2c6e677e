"""Rules for mmpretrain ViT/DeiT, Swin, SwinV2, BEiT and EVA02 (and mmcv's FFN and PatchEmbed, which they use)."""
import functools
from typing import Optional

from mmcv.cnn.bricks.transformer import FFN, PatchEmbed
from mmpretrain.models.backbones.swin_transformer import SwinBlock
from mmpretrain.models.backbones.vision_transformer import TransformerEncoderLayer
from mmpretrain.models.backbones.vit_eva02 import AttentionWithRoPE, EVA02EndcoderLayer
from mmpretrain.models.heads import ClsHead
from mmpretrain.models.utils import SwiGLUFFN
from mmpretrain.models.utils.attention import BEiTAttention, MultiheadAttention, WindowMSA, WindowMSAV2
from torch import nn

from . import register_rule
from .base import CoreFactory, FamilyRule
from .routed import route_attention
from .window_msa import QuantWindowAttention

#: Attentions whose own forward runs with routed matmuls (SwinV2 cosine attention, BEiT, EVA02 with RoPE).
ROUTED = (WindowMSAV2, BEiTAttention, AttentionWithRoPE)


def linear_paths(module: nn.Module) -> list[str]:
    return [name for name, m in module.named_modules() if isinstance(m, nn.Linear)]


@register_rule('mmpretrain', 'mmcv')
class MMPretrainRule(FamilyRule):
    """ViT/DeiT attention swaps its SDPA function for quantized matmuls; Swin's WindowMSA is replaced."""

    def layer_types(self, module: nn.Module) -> dict[str, tuple[str, int]]:
        if isinstance(module, (MultiheadAttention, WindowMSA) + ROUTED):
            return {'qkv': ('qkv', module.num_heads), 'proj': ('proj', module.num_heads)}
        if isinstance(module, SwiGLUFFN):  # also SwiGLUFFNFused
            return {'w12': ('fc1', 1), 'w3': ('fc2', 1)}
        if isinstance(module, FFN):
            fcs = linear_paths(module)
            return {p: ('fc1' if i == 0 else 'fc2' if i == len(fcs) - 1 else 'linear', 1) for i, p in enumerate(fcs)}
        if isinstance(module, PatchEmbed):
            return {'projection': ('patch_embed', 1)}
        if isinstance(module, ClsHead):
            return {p: ('head', 1) for p in linear_paths(module)}
        return {}

    def norm_consumers(self, module: nn.Module) -> dict[str, tuple[str, ...]]:
        if isinstance(module, TransformerEncoderLayer):
            return {'ln1': ('attn.qkv', ), 'ln2': ('ffn.layers.0.0', )}
        if isinstance(module, SwinBlock):
            return {'norm1': ('attn.w_msa.qkv', ), 'norm2': ('ffn.layers.0.0', )}
        if isinstance(module, EVA02EndcoderLayer):
            return {'norm1': ('attn.qkv', ), 'norm2': ('mlp.w12', )}
        return {}  # SwinV2 normalises after attention and MLP (res-post-norm): no LayerNorm feeds a linear

    def quantize_attention(self, path: str, module: nn.Module, make_core: CoreFactory) -> Optional[nn.Module]:
        if isinstance(module, WindowMSA):
            return QuantWindowAttention(module, make_core(path + '.core', module.num_heads))
        if isinstance(module, MultiheadAttention):  # its forward calls self.scaled_dot_product_attention(q, k, v, ...)
            module.core = make_core(path + '.core', module.num_heads)
            module.scaled_dot_product_attention = functools.partial(_core_of, module)
            module.register_load_state_dict_pre_hook(_legacy_core_keys)
            return module
        if isinstance(module, ROUTED):
            return route_attention(module, make_core(path + '.core', module.num_heads))
        return None


def _core_of(module: nn.Module, *args, **kwargs):
    return module.core(*args, **kwargs)


LEGACY_CORE = 'scaled_dot_product_attention.'


def _legacy_core_keys(module: nn.Module, state_dict: dict, prefix: str, *args) -> None:
    """Checkpoints of mmvitq <= 0.x kept a ViT's attention matmuls at `attn.scaled_dot_product_attention.*`; they are
    at `attn.core.*` now, as in every family."""
    for key in [k for k in state_dict if k.startswith(prefix + LEGACY_CORE)]:
        state_dict[prefix + 'core.' + key[len(prefix + LEGACY_CORE):]] = state_dict.pop(key)
