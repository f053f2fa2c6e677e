"""Rules for mmpretrain ViT/DeiT and Swin (and mmcv's FFN and PatchEmbed, which they use)."""
from typing import Optional

from mmcv.cnn.bricks.transformer import FFN, PatchEmbed
from mmpretrain.models.backbones.swin_transformer import SwinBlock
from mmpretrain.models.backbones.vision_transformer import TransformerEncoderLayer
from mmpretrain.models.heads import ClsHead
from mmpretrain.models.utils.attention import MultiheadAttention, WindowMSA
from torch import nn

from .base import CoreFactory, FamilyRule
from .window_msa import QuantWindowAttention


def linear_paths(module: nn.Module) -> list[str]:
    return [name for name, m in module.named_modules() if isinstance(m, nn.Linear)]


class MMPretrainRule(FamilyRule):
    """ViT/DeiT attention swaps its SDPA function for quantized matmuls; Swin's WindowMSA is replaced."""

    def layer_types(self, module: nn.Module) -> dict[str, tuple[str, int]]:
        if isinstance(module, (MultiheadAttention, WindowMSA)):
            return {'qkv': ('qkv', module.num_heads), 'proj': ('proj', module.num_heads)}
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
        return {}

    def quantize_attention(self, path: str, module: nn.Module, make_core: CoreFactory) -> Optional[nn.Module]:
        if isinstance(module, MultiheadAttention):
            module.scaled_dot_product_attention = make_core(f'{path}.scaled_dot_product_attention',
                                                            module.num_heads)
            return module
        if isinstance(module, WindowMSA):
            return QuantWindowAttention(module, make_core(path + '.core', module.num_heads))
        return None
