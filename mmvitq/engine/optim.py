"""Layer-wise learning-rate decay for a detector's ViT backbone, as ViTDet fine-tunes (mmpretrain's needs the
model itself to know each parameter's depth, which a detector does not)."""
import functools
from typing import Callable, Optional

from mmdet.registry import OPTIM_WRAPPER_CONSTRUCTORS
from mmpretrain.engine.optimizers import LearningRateDecayOptimWrapperConstructor
from torch import nn


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class BackboneLayerDecayOptimWrapperConstructor(LearningRateDecayOptimWrapperConstructor):
    """mmpretrain's layer-wise decay (`paramwise_cfg.layer_decay_rate`, ...) with depths from the first submodule
    that defines `get_layer_depth` (the ViT backbone); the neck and heads count as its top layer."""

    def add_params(self, params: list, module: nn.Module, prefix: str = '',
                   get_layer_depth: Optional[Callable] = None, **kwargs) -> None:
        if get_layer_depth is None and not hasattr(module, 'get_layer_depth'):
            found = [(path, m) for path, m in module.named_modules() if hasattr(m, 'get_layer_depth')]
            if not found:
                raise ValueError(f'optim_wrapper.constructor={type(self).__name__}: no submodule of '
                                 f'{type(module).__name__} has get_layer_depth (a ViT backbone does)')
            path, backbone = found[0]
            get_layer_depth = functools.partial(backbone.get_layer_depth, prefix=path + '.')
        super().add_params(params, module, prefix, get_layer_depth, **kwargs)
