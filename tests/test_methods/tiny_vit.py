"""A two-layer ViT for 28x28 grey images (3 heads, 48 dims) and its randomly initialised float checkpoint."""
from typing import Optional

import torch
from mmengine.registry import DefaultScope
from mmpretrain.registry import MODELS

ARCH = dict(type='ImageClassifier',
            backbone=dict(type='VisionTransformer', arch=dict(embed_dims=48, num_layers=2, num_heads=3,
                                                              feedforward_channels=96),
                          img_size=28, patch_size=7, in_channels=1, drop_path_rate=0.0),
            neck=None,
            head=dict(type='VisionTransformerClsHead', num_classes=10, in_channels=48))


def save_float_checkpoint(path, head_std: Optional[float] = None) -> str:
    """Save `ARCH` as initialised from seed 0 (mmpretrain zeroes the head; `head_std` draws it instead)."""
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MODELS.build(ARCH)
    model.init_weights()
    if head_std is not None:
        torch.nn.init.normal_(model.head.layers.head.weight, std=head_std)
    torch.save({'state_dict': model.state_dict()}, path)
    return str(path)
