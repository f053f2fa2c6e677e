"""quantize_model(model, qconfig): swap a model's layers for quantized twins, following the family rules."""
import inspect
import re
import warnings
from typing import Callable, Mapping, Optional

from torch import nn

from ..quantizers.base import BaseQuantizer
from ..registry import QUANTIZERS
from .modules import QuantAttentionCore, QuantConv2d, QuantLinear, QuantMatMul
from .qconfig import FIRST_LAST, MODULE_TYPES, QConfig
from .rules import library_of, rules_for


def _join(prefix: str, name: str) -> str:
    return f'{prefix}.{name}' if prefix else name


def _set_module(model: nn.Module, path: str, module: nn.Module) -> None:
    parent, _, name = path.rpartition('.')
    setattr(model.get_submodule(parent) if parent else model, name, module)


def layer_points(module_type: str) -> tuple[str, str]:
    """The points of a layer type's two quantizers: (input, weight) of a linear or conv, (a, b) of a matmul."""
    return {'qk': ('q', 'k'), 'av': ('softmax', 'v'), 'fc2': ('gelu', 'weight')}.get(module_type,
                                                                                   ('linear_input', 'weight'))


class _Builder:
    """Builds the quantizer of one point from the qconfig, with the shape arguments of its tensor."""

    def __init__(self, qconfig: QConfig):
        self.qconfig = qconfig
        self.types: set[str] = set()  # module types met
        self.points: set[str] = set()  # points met (quantized or not)

    def __call__(self, path: str, module_type: str, point: str, heads_ok: bool, **shape) -> Optional[nn.Module]:
        self.types.add(module_type)
        self.points.add(point)
        cfg = self.qconfig.quantizer_cfg(path, module_type, point)
        if cfg is None:
            return None
        if cfg.get('granularity') == 'head' and not heads_ok:
            allowed = ('tensor', 'channel') if point == 'weight' else ('tensor', 'channel', 'token')
            raise ValueError(f"{self.qconfig.where}: granularity 'head' is not defined for the {point} point of "
                             f"{path} ({module_type}); allowed there: {allowed}")
        accepted = inspect.signature(QUANTIZERS.get(cfg['type'])).parameters
        shape = {k: v for k, v in shape.items() if k in accepted}  # e.g. Log2Quantizer is per-tensor only
        try:
            return QUANTIZERS.build({**cfg, **shape})
        except (ValueError, TypeError) as e:
            raise ValueError(f'{self.qconfig.where}: bad quantizer for the {point} point of {path} ({module_type}): '
                             f'{e}') from e

    def core(self, prefix: str, heads: int) -> QuantAttentionCore:
        """Quantized q @ k^T and attn @ v of an attention block with `heads` heads."""
        shape = dict(ch_axis=1, num_channels=heads, num_heads=heads, heads_ok=True)
        matmuls = [QuantMatMul(*(self(_join(prefix, kind), kind, point, **shape) for point in layer_points(kind)))
                   for kind in ('qk', 'av')]
        core = QuantAttentionCore(*matmuls)
        core.av.module_type = 'av'
        return core

    def linear(self, path: str, linear: nn.Linear, module_type: str, heads: int) -> QuantLinear:
        input_quant = self(path, module_type, layer_points(module_type)[0], heads_ok=module_type == 'proj', ch_axis=-1,
                           num_channels=linear.in_features, num_heads=heads)
        weight_quant = self(path, module_type, 'weight', heads_ok=module_type == 'qkv', ch_axis=0,
                            num_channels=linear.out_features, num_heads=3 * heads)
        quantized = QuantLinear.from_float(linear, input_quant, weight_quant)
        quantized.module_type = module_type
        return quantized

    def conv(self, path: str, conv: nn.Conv2d, module_type: str) -> QuantConv2d:
        input_quant = self(path, module_type, 'linear_input', heads_ok=False, ch_axis=1,
                           num_channels=conv.in_channels, num_heads=1)
        weight_quant = self(path, module_type, 'weight', heads_ok=False, ch_axis=0, num_channels=conv.out_channels,
                            num_heads=1)
        quantized = QuantConv2d.from_float(conv, input_quant, weight_quant)
        quantized.module_type = module_type
        return quantized


#: Class names of attention-like modules, which a family rule should give quantized matmuls.
ATTENTION_LIKE = re.compile(r'attention|attn|msa', re.IGNORECASE)


def unquantized_attention(model: nn.Module, skipped: frozenset = frozenset()) -> list[str]:
    """Paths of the attention-like modules of `model` (a class name with 'Attention', 'Attn' or 'MSA', or a
    `num_heads` attribute) that hold no quantized matmul, innermost first; `skipped` paths are left out."""
    found = []
    for path, module in model.named_modules():
        if library_of(module) == 'mmvitq' or isinstance(module, BaseQuantizer) or path in skipped:
            continue
        named = ATTENTION_LIKE.search(type(module).__name__) or hasattr(module, 'num_heads')
        if named and not any(isinstance(m, QuantMatMul) for m in module.modules()):
            found.append(path)
    return [p for p in found if not any(q != p and (not p or q.startswith(f'{p}.')) for q in found)]


def quantize_model(model: nn.Module, qconfig: 'Mapping | QConfig | None' = None,
                   filter_fn: Optional[Callable[[str, nn.Module], bool]] = None, strict: bool = False) -> nn.Module:
    """Quantize `model` in place and return it.

    Every Linear becomes a QuantLinear (typed qkv / proj / fc1 / fc2 / head / linear by the family
    rules), the patch-embedding Conv2d a QuantConv2d, and each attention block of a known family
    gets quantized q @ k^T and attn @ v. Other modules (LayerNorm, other convs) stay float.
    A qconfig `per_type` / `per_point` entry or an `overrides` path that matches nothing in the model is an
    error naming it and what the model has.

    Args:
        model: an mmpretrain, mmdet or timm model (or any model a registered rule knows).
        qconfig: the quantization settings (see QConfig); None: W8A8 defaults.
        filter_fn: `filter_fn(path, module)` -> whether to quantize that Linear, Conv2d or attention block, as in
            torchao's quantize_; None quantizes all.
        strict: raise ValueError, instead of warning, when an attention-like module is left with float matmuls
            (no rule knows its family).
    """
    qconfig = QConfig.from_dict(qconfig)
    build = _Builder(qconfig)
    rules = rules_for(model)
    keep = filter_fn or (lambda path, module: True)
    types: dict[str, tuple[str, int]] = {}
    for path, module in model.named_modules():
        for rule in rules:
            types.update({_join(path, rel): t for rel, t in rule.layer_types(module).items()})

    skipped = set()
    for path, module in list(model.named_modules()):
        if not keep(path, module):
            skipped.add(path)
            continue
        for rule in rules:
            new = rule.quantize_attention(path, module, build.core)
            if new is not None:
                if new is not module:
                    _set_module(model, path, new)
                break

    for path, module in list(model.named_modules()):
        if isinstance(module, (QuantLinear, QuantConv2d)) or not keep(path, module):
            continue
        if isinstance(module, nn.Linear):
            module_type, heads = types.get(path, ('linear', 1))
            _set_module(model, path, build.linear(path, module, module_type, heads))
        elif isinstance(module, nn.Conv2d) and path in types:
            _set_module(model, path, build.conv(path, module, types[path][0]))

    left = unquantized_attention(model, frozenset(skipped))
    if left:
        message = (f'quantize_model: {len(left)} attention-like modules keep float matmuls, no family rule knows '
                   f'them: {", ".join(f"{p} ({type(model.get_submodule(p)).__name__})" for p in left[:8])}'
                   f'{" ..." if len(left) > 8 else ""}; register a rule (mmvitq.models.rules.register_rule) or '
                   'pass filter_fn to leave them out knowingly')
        if strict:
            raise ValueError(message)
        warnings.warn(message, stacklevel=2)

    paths = dict(model.named_modules())
    unknown = [p for p in qconfig.overrides if p not in paths]
    if unknown:
        quantized = [p for p, m in paths.items() if isinstance(m, (QuantLinear, QuantConv2d, QuantMatMul))]
        raise ValueError(f'{qconfig.where}.overrides: no quantized layer at {unknown}; quantized layers are e.g. '
                         f'{quantized[:6]}')
    for mtype in qconfig.per_type:
        if mtype not in build.types:
            raise ValueError(f'{qconfig.where}.per_type.{mtype} matches no layer of this {type(model).__name__}; '
                             f'its module types are {tuple(t for t in MODULE_TYPES if t in build.types)}')
    for point in qconfig.per_point:
        if point not in build.points or point not in qconfig.points:
            present = tuple(p for p in qconfig.points if p in build.points)
            raise ValueError(f'{qconfig.where}.per_point.{point} matches no quantized point of this '
                             f'{type(model).__name__}; its quantized points are {present}')
    return model


def quantization_points(model: nn.Module) -> list[dict]:
    """Every quantization point of a quantized model, in model order: its layer's path (the key a qconfig's
    `overrides` takes), the layer's type (`per_type`), the point (`per_point`, `points`) and its quantizer (None when
    the point is off). For a float model: `quantization_points(quantize_model(copy.deepcopy(model)))`."""
    rows = []
    for path, module in model.named_modules():
        if isinstance(module, (QuantLinear, QuantConv2d)):
            quantizers = (module.input_quant, module.weight_quant)
        elif isinstance(module, QuantMatMul):
            quantizers = (module.a_quant, module.b_quant)
        else:
            continue
        for point, quantizer in zip(layer_points(module.module_type), quantizers):
            rows.append(dict(layer=path, type=module.module_type, point=point,
                             quantizer=None if quantizer is None else f'{type(quantizer).__name__}('
                             f'{quantizer.extra_repr()})'))
    return rows


def quantized_layers(model: nn.Module, enabled: bool = False) -> dict[str, nn.Module]:
    """{path: layer} of the linears and convs of `model` whose weight has a quantizer (with `enabled`, only those
    whose weight quantizer runs), in model order: the one list every method, hook and exporter reads."""
    return {path: m for path, m in model.named_modules()
            if isinstance(m, (QuantLinear, QuantConv2d)) and m.weight_quant is not None
            and (m.weight_quant.enabled or not enabled)}


def bits_tag(model: nn.Module) -> str:
    """The model's widths as a name: 'w4a4' (ranges such as 'w2-8a3-6' when mixed, 'f' for float); the patch
    embedding and the head are left out, as they usually keep 8 bits."""
    weights, acts = set(), set()
    for module in model.modules():
        if isinstance(module, (QuantLinear, QuantConv2d)) and module.module_type not in FIRST_LAST:
            weights.update([module.weight_quant.bits] if module.weight_quant is not None else [])
            acts.update([module.input_quant.bits] if module.input_quant is not None else [])
        elif isinstance(module, QuantMatMul):
            acts.update(q.bits for q in (module.a_quant, module.b_quant) if q is not None)

    def span(bits: set) -> str:
        values = sorted(int(b) for b in bits)
        return 'f' if not values else f'{values[0]}' if len(set(values)) == 1 else f'{values[0]}-{values[-1]}'

    return f'w{span(weights)}a{span(acts)}'
