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


def transformer_blocks(model: nn.Module) -> dict[str, int]:
    """{path of each transformer block (a module whose LayerNorms a rule knows): its embedding width}, in order."""
    blocks = {}
    for path, module in model.named_modules():
        for rule in RULES:
            norms = rule.norm_consumers(module)
            if norms:
                blocks[path] = module.get_submodule(next(iter(norms))).normalized_shape[-1]
                break
    return blocks


__all__ = ['FamilyRule', 'RULES', 'norm_consumers', 'transformer_blocks']
