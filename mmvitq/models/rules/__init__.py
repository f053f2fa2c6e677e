"""Model-family rules for quantize_model: one file per family."""
from torch import nn

from .base import FamilyRule
from .mmdet import MMDetRule
from .mmpretrain import MMPretrainRule
from .timm import TimmRule

RULES: tuple[FamilyRule, ...] = (MMPretrainRule(), MMDetRule(), TimmRule())


def norm_consumers(model: nn.Module) -> dict[str, tuple[str, ...]]:
    """{path of each block's LayerNorm: paths of the Linears that read its output}, over the whole model."""
    pairs = {}
    for path, module in model.named_modules():
        for rule in RULES:
            for norm, linears in rule.norm_consumers(module).items():
                prefix = f'{path}.' if path else ''
                pairs[prefix + norm] = tuple(prefix + linear for linear in linears)
    return pairs


__all__ = ['FamilyRule', 'RULES', 'norm_consumers']
