"""Model-family rules for quantize_model: registered per library, imported only when a model needs them.

A rule (`FamilyRule`) says which submodules of one family become which quantized modules. Rules are registered
with `@register_rule(library, ...)`, the top-level packages whose modules they handle (e.g. 'timm'); mmvitq's own
rules for mmpretrain (and mmcv's bricks), mmdet and timm are imported the first time a model holds a module of
that library, so quantizing a timm model never imports mmpretrain, mmdet or mmcv. A rule of your own registers
itself when its module is imported.
"""
import importlib
from typing import Callable

from torch import nn

from .base import FamilyRule

#: library -> the rules registered for it, in registration order
RULES: dict[str, list[FamilyRule]] = {}
#: library -> mmvitq's module of rules for it, imported on first use
BUILTIN = {'mmpretrain': '.mmpretrain', 'mmcv': '.mmpretrain', 'mmdet': '.mmdet', 'timm': '.timm'}


def register_rule(*libraries: str) -> Callable[[type], type]:
    """Class decorator: register an instance of the FamilyRule subclass for modules of `libraries`."""

    def register(cls: type) -> type:
        rule = cls()
        for library in libraries:
            RULES.setdefault(library, []).append(rule)
        return cls

    return register


def library_of(module: nn.Module) -> str:
    """The top-level package that defines the module's class (e.g. 'timm')."""
    return type(module).__module__.split('.', 1)[0]


def rules_for(model: nn.Module) -> list[FamilyRule]:
    """The rules for every library `model` holds modules of (mmvitq's own imported on first use), each once."""
    libraries = list(dict.fromkeys(library_of(m) for m in model.modules()))
    for library in libraries:
        if library in BUILTIN:
            importlib.import_module(BUILTIN[library], __name__)  # registers its rules once, like any import
    return list(dict.fromkeys(rule for library in libraries for rule in RULES.get(library, [])))


def norm_consumers(model: nn.Module) -> dict[str, tuple[str, ...]]:
    """{path of each block's LayerNorm: paths of the Linears that read its output}, over the whole model."""
    pairs, rules = {}, rules_for(model)
    for path, module in model.named_modules():
        for rule in rules:
            for norm, linears in rule.norm_consumers(module).items():
                prefix = f'{path}.' if path else ''
                pairs[prefix + norm] = tuple(prefix + linear for linear in linears)
    return pairs


def transformer_blocks(model: nn.Module) -> dict[str, int]:
    """{path of each transformer block (a module whose LayerNorms a rule knows): its embedding width}, in order."""
    blocks, rules = {}, rules_for(model)
    for path, module in model.named_modules():
        for rule in rules:
            norms = rule.norm_consumers(module)
            if norms:
                blocks[path] = module.get_submodule(next(iter(norms))).normalized_shape[-1]
                break
    return blocks


__all__ = ['FamilyRule', 'RULES', 'register_rule', 'rules_for', 'norm_consumers', 'transformer_blocks']
