"""A plain ViT as a detection backbone (ViTDet): mmpretrain's VisionTransformer with windowed attention.

ViTDet (Li et al., 2022) runs attention inside non-overlapping windows of the patch-token map in all blocks but a
few global ones, so a plain ViT scales to detection resolutions; the simple feature pyramid
(`mmvitq.models.necks.SimpleFeaturePyramid`) then builds the multi-scale maps from its single output. Only the
attention is windowed (the map is zero-padded after the block's LayerNorm to a multiple of the window, as ViTDet
does); LayerNorm, MLP, residuals and drop-path act on whole images, so a block keeps mmpretrain's parameter names
and every quantization rule of the ViT applies unchanged; a windowed block takes the map's (H, W) as `hw`.
With `window_size=0` the model is mmpretrain's ViT.
"""
import math
from typing import Sequence

import torch.nn.functional as F
from mmpretrain.models.backbones import VisionTransformer
from mmpretrain.models.backbones.vision_transformer import TransformerEncoderLayer
from mmpretrain.models.utils import resize_pos_embed
from torch import Tensor


def window_partition(x: Tensor, hw: tuple[int, int], window: int) -> tuple[Tensor, tuple[int, int]]:
    """(B, H*W, C) tokens -> (B * windows, window*window, C), zero-padding H and W up to multiples of `window`;
    also returns the padded (H, W)."""
    B, _, C = x.shape
    H, W = hw
    x = x.view(B, H, W, C)
    pad_h, pad_w = -H % window, -W % window
    if pad_h or pad_w:
        x = F.pad(x, (0, 0, 0, pad_w, 0, pad_h))
    Hp, Wp = H + pad_h, W + pad_w
    x = x.view(B, Hp // window, window, Wp // window, window, C).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, window * window, C), (Hp, Wp)


def window_merge(x: Tensor, hw: tuple[int, int], padded: tuple[int, int], window: int) -> Tensor:
    """The inverse of window_partition: (B * windows, window*window, C) -> (B, H*W, C), padding dropped."""
    (H, W), (Hp, Wp) = hw, padded
    C = x.shape[-1]
    x = x.view(-1, Hp // window, Wp // window, window, window, C).permute(0, 1, 3, 2, 4, 5)
    x = x.reshape(-1, Hp, Wp, C)[:, :H, :W]
    return x.reshape(x.shape[0], H * W, C)


class WindowedEncoderLayer(TransformerEncoderLayer):
    """mmpretrain's encoder layer (x + attn(ln1(x)), then the FFN with its residual), attending within windows."""

    window_size: int

    @classmethod
    def from_layer(cls, layer: TransformerEncoderLayer, window_size: int) -> 'WindowedEncoderLayer':
        """`layer` itself (its parameters, names and initialisation) with the windowed forward."""
        layer.__class__, layer.window_size = cls, window_size
        return layer

    def forward(self, x: Tensor, hw: tuple[int, int]) -> Tensor:
        windows, padded = window_partition(self.ln1(x), hw, self.window_size)
        x = x + window_merge(self.attn(windows), hw, padded, self.window_size)
        return self.ffn(self.ln2(x), identity=x)

    def extra_repr(self) -> str:
        return f'window_size={self.window_size}'


class WindowedVisionTransformer(VisionTransformer):
    """mmpretrain's VisionTransformer with ViTDet's windowed attention in every block not in `global_attn_indexes`.

    Args:
        window_size: side of the attention windows, in patches; 0 (default) for global attention everywhere.
        global_attn_indexes: the blocks that attend over the whole map (ViTDet-B: 2, 5, 8, 11).
        Everything else is mmpretrain's VisionTransformer's; windows need `with_cls_token=False`.
    """

    def __init__(self, *args, window_size: int = 0, global_attn_indexes: Sequence[int] = (), **kwargs):
        super().__init__(*args, **kwargs)
        if not isinstance(window_size, int) or window_size < 0:
            raise ValueError(f'window_size must be an int >= 0 (0: global attention), got {window_size!r}')
        if window_size and self.with_cls_token:
            raise ValueError('window_size > 0 needs with_cls_token=False: a class token belongs to no window')
        bad = [i for i in global_attn_indexes if not 0 <= i < self.num_layers]
        if bad:
            raise ValueError(f'global_attn_indexes must lie in [0, {self.num_layers}), got {bad}')
        self.window_size = window_size
        self.global_attn_indexes = tuple(global_attn_indexes)
        if window_size:
            for i, layer in enumerate(self.layers):
                if i not in self.global_attn_indexes:
                    WindowedEncoderLayer.from_layer(layer, window_size)

    def _prepare_pos_embed(self, state_dict: dict, prefix: str, *args, **kwargs) -> None:
        """A checkpoint with a class token's position (MAE, DeiT) loads into a model without one at any size: that
        position is dropped before mmpretrain resizes the grid (mmpretrain drops it only at the same size)."""
        pos = state_dict.get(prefix + 'pos_embed')
        if pos is not None and not self.with_cls_token and pos.shape[1] > 1 and math.isqrt(pos.shape[1] - 1)**2 == \
                pos.shape[1] - 1:
            state_dict[prefix + 'pos_embed'] = pos[:, 1:]
        super()._prepare_pos_embed(state_dict, prefix, *args, **kwargs)

    def forward(self, x: Tensor) -> tuple[Tensor, ...]:
        if not self.window_size:
            return super().forward(x)
        x, hw = self.patch_embed(x)
        x = x + resize_pos_embed(self.pos_embed, self.patch_resolution, hw, mode=self.interpolate_mode,
                                 num_extra_tokens=self.num_extra_tokens)
        x = self.pre_norm(self.drop_after_pos(x))
        outs = []
        for i, layer in enumerate(self.layers):
            x = layer(x, hw=hw) if isinstance(layer, WindowedEncoderLayer) else layer(x)
            if i == len(self.layers) - 1 and self.final_norm:
                x = self.ln1(x)
            if i in self.out_indices:
                outs.append(self._format_output(x, hw))
        return tuple(outs)
