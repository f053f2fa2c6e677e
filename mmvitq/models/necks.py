"""ViTDet's simple feature pyramid: the multi-scale maps an mmdet head needs, built from a plain ViT's single map.

A plain ViT gives one map (stride 16 for 16x16 patches). Each pyramid level rescales it on its own, with no
top-down path (Li et al., 2022, Fig. 2c): scale 4 by two stride-2 transposed convolutions (LayerNorm and GELU
between them), scale 2 by one, scale 1 as is, scale 1/2 by 2x2 max pooling; then a 1x1 and a 3x3 convolution,
each followed by a LayerNorm over channels, give every level `out_channels`. Levels beyond the scales
(`num_outs`) are taken from the last by stride-2 subsampling, as FPN's extra max-pooled levels are.
"""
import math
from typing import Optional, Sequence

import torch.nn.functional as F
from mmcv.cnn import ConvModule, build_norm_layer
from mmengine.model import BaseModule
from torch import Tensor, nn


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of an (N, C, H, W) map, as ViTDet normalises its pyramid (`type='mmvitq.LN2d'`).

    The output is contiguous: mmcv's CPU RoIAlign reads its input's memory as contiguous NCHW whatever its strides,
    so a permuted view fed to the RoI heads gives wrong features (measured: a detector that never learned)."""

    def __init__(self, num_features: int, eps: float = 1e-6, **kwargs) -> None:
        super().__init__(num_features, eps=eps, **kwargs)

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2).contiguous()


def rescale(channels: int, scale: float, norm_cfg: Optional[dict]) -> tuple[nn.Module, int]:
    """The layers that rescale a `channels`-wide map by `scale` (a power of 2), and their output width."""
    steps = math.log2(scale)
    if steps != int(steps):
        raise ValueError(f'neck scale_factors must be powers of 2 (4, 2, 1, 0.5, ...), got {scale}')
    layers = []
    for i in range(int(steps)):  # upsample: transposed convolutions, halving the width each time
        if i:
            layers += [build_norm_layer(norm_cfg, channels)[1] if norm_cfg else nn.Identity(), nn.GELU()]
        layers.append(nn.ConvTranspose2d(channels, channels // 2, kernel_size=2, stride=2))
        channels //= 2
    layers += [nn.MaxPool2d(kernel_size=2, stride=2) for _ in range(int(-steps))]
    return nn.Sequential(*layers), channels


class SimpleFeaturePyramid(BaseModule):
    """ViTDet's simple feature pyramid (see the module docstring), as an mmdet neck.

    Args:
        in_channels: the backbone map's width (a single int, or a one-element list).
        out_channels: every level's width.
        scale_factors: one level per factor, relative to the backbone map (ViTDet: 4, 2, 1, 0.5).
        num_outs: levels in all; those beyond the factors subsample the last one by 2 each (ViTDet: 5).
        norm_cfg: mmcv's normalisation after each convolution (None: none, the convolutions get biases); ViTDet's
            LayerNorm over channels by default.
    """

    def __init__(self,
                 in_channels: 'int | Sequence[int]',
                 out_channels: int,
                 scale_factors: Sequence[float] = (4.0, 2.0, 1.0, 0.5),
                 num_outs: Optional[int] = None,
                 norm_cfg: Optional[dict] = dict(type='mmvitq.LN2d'),
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg)
        if not isinstance(in_channels, int):
            if len(in_channels) != 1:
                raise ValueError(f'neck in_channels: a simple feature pyramid reads one map, got {in_channels}')
            in_channels = in_channels[0]
        self.num_outs = num_outs or len(scale_factors)
        if self.num_outs < len(scale_factors):
            raise ValueError(f'neck num_outs must be >= len(scale_factors) = {len(scale_factors)}, got {num_outs}')
        self.scale_factors = tuple(scale_factors)
        self.stages = nn.ModuleList()
        for scale in self.scale_factors:
            resample, channels = rescale(in_channels, scale, norm_cfg)
            self.stages.append(
                nn.Sequential(resample, ConvModule(channels, out_channels, 1, norm_cfg=norm_cfg, act_cfg=None),
                              ConvModule(out_channels, out_channels, 3, padding=1, norm_cfg=norm_cfg, act_cfg=None)))

    def forward(self, inputs: 'Tensor | Sequence[Tensor]') -> tuple[Tensor, ...]:
        x = inputs if isinstance(inputs, Tensor) else inputs[-1]
        outs = [stage(x) for stage in self.stages]
        for _ in range(self.num_outs - len(outs)):
            outs.append(F.max_pool2d(outs[-1], kernel_size=1, stride=2))
        return tuple(outs)
