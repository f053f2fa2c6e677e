"""Quantized ViT and Swin backbones: the float backbone built from the same arguments, then quantized.

Also registers the float pieces a plain ViT needs in an mmdet detector: `WindowedVisionTransformer` (ViTDet's
windowed attention) and the `SimpleFeaturePyramid` neck.

Registered in mmpretrain's and mmdet's MODELS (and mmvitq's, for `type='mmvitq.Quant...'`), so a
config swaps `type='VisionTransformer'` for `type='QuantVisionTransformer'` and adds `qconfig=dict(...)`.
Quantization happens at construction; the float checkpoint in init_cfg loads afterwards into the
same parameter names, and the quantizers calibrate on their first batch unless a quantized
checkpoint restores them.
"""
from typing import Mapping, Optional

from mmdet.models.backbones import SwinTransformer as MMDetSwinTransformer
from mmdet.registry import MODELS as MMDET_MODELS
from mmengine.registry import DefaultScope
from mmpretrain.models.backbones import SwinTransformer
from mmpretrain.registry import MODELS as MMPRETRAIN_MODELS
from torch import nn

from ..registry import MODELS
from .necks import LayerNorm2d, SimpleFeaturePyramid
from .qconfig import QConfig
from .quantize import quantize_model
from .vitdet import WindowedVisionTransformer

WHERE = 'model.backbone.qconfig'  # where a quantized backbone's qconfig sits in an mmpretrain/mmdet config


class QuantVisionTransformer(WindowedVisionTransformer):
    """mmpretrain's VisionTransformer (ViT, DeiT; ViTDet's windowed attention with `window_size`) with quantized
    linears, patch embedding and attention."""

    def __init__(self, *args, qconfig: Optional[Mapping] = None, **kwargs):
        super().__init__(*args, **kwargs)
        quantize_model(self, QConfig.from_dict(qconfig, WHERE))


class QuantSwinTransformer(SwinTransformer):
    """mmpretrain's SwinTransformer with quantized linears, patch embedding and window attention."""

    def __init__(self, *args, qconfig: Optional[Mapping] = None, **kwargs):
        super().__init__(*args, **kwargs)
        quantize_model(self, QConfig.from_dict(qconfig, WHERE))


class QuantDetSwinTransformer(MMDetSwinTransformer):
    """mmdet's SwinTransformer (detection arguments and init) with quantized layers."""

    def __init__(self, *args, qconfig: Optional[Mapping] = None, **kwargs):
        super().__init__(*args, **kwargs)
        quantize_model(self, QConfig.from_dict(qconfig, WHERE))


def _swin_for_scope(*args, **kwargs) -> nn.Module:
    """`mmvitq.QuantSwinTransformer`: mmdet's flavour inside mmdet configs, mmpretrain's elsewhere."""
    scope = DefaultScope.get_current_instance()
    cls = QuantDetSwinTransformer if scope is not None and scope.scope_name == 'mmdet' else QuantSwinTransformer
    return cls(*args, **kwargs)


for registry in (MMPRETRAIN_MODELS, MMDET_MODELS, MODELS):
    registry.register_module(module=WindowedVisionTransformer)
MMDET_MODELS.register_module(module=SimpleFeaturePyramid)
MODELS.register_module(module=SimpleFeaturePyramid)
MODELS.register_module(name='LN2d', module=LayerNorm2d)
MMPRETRAIN_MODELS.register_module(module=QuantVisionTransformer)
MMPRETRAIN_MODELS.register_module(module=QuantSwinTransformer)
MMDET_MODELS.register_module(module=QuantVisionTransformer)
MMDET_MODELS.register_module(name='QuantSwinTransformer', module=QuantDetSwinTransformer)
MODELS.register_module(module=QuantVisionTransformer)
MODELS.register_module(name='QuantSwinTransformer', module=_swin_for_scope)
