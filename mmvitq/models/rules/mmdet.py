"""Rules for mmdet's SwinTransformer: its WindowMSA (mmcv's FFN is covered by the mmpretrain rule; mmdet's own
PatchEmbed has no rule yet, so the patch-embedding conv of an mmdet Swin stays float)."""
from typing import Optional

from mmdet.models.backbones.swin import SwinBlock, WindowMSA
from torch import nn

from . import register_rule
from .base import CoreFactory, FamilyRule
from .window_msa import QuantWindowAttention


@register_rule('mmdet')
class MMDetRule(FamilyRule):
    """mmdet's WindowMSA has the same forward as mmpretrain's and gets the same replacement."""

    def layer_types(self, module: nn.Module) -> dict[str, tuple[str, int]]:
        if isinstance(module, WindowMSA):
            return {'qkv': ('qkv', module.num_heads), 'proj': ('proj', module.num_heads)}
        return {}

    def norm_consumers(self, module: nn.Module) -> dict[str, tuple[str, ...]]:
        if isinstance(module, SwinBlock):
            return {'norm1': ('attn.w_msa.qkv', ), 'norm2': ('ffn.layers.0.0', )}
        return {}

    def quantize_attention(self, path: str, module: nn.Module, make_core: CoreFactory) -> Optional[nn.Module]:
        if isinstance(module, WindowMSA):
            return QuantWindowAttention(module, make_core(path + '.core', module.num_heads))
        return None
