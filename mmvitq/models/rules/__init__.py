"""Model-family rules for quantize_model: one file per family."""
from .base import FamilyRule
from .mmdet import MMDetRule
from .mmpretrain import MMPretrainRule
from .timm import TimmRule

RULES: tuple[FamilyRule, ...] = (MMPretrainRule(), MMDetRule(), TimmRule())

__all__ = ['FamilyRule', 'RULES']
