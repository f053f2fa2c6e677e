"""The qconfig schema: which points are quantized, with which quantizer and how many bits.

A qconfig is a plain dict (usable in mmengine configs), validated once by `QConfig.from_dict`
before any work starts; every error names the field and the allowed values::

    qconfig = dict(
        w_bits=4, a_bits=4,            # default bits of weights and activations (2..8)
        first_last_bits=8,             # bits of the patch embedding and the classifier head (None: same)
        points=('weight', 'linear_input', 'gelu', 'q', 'k', 'softmax', 'v'),  # what is quantized
        weight=dict(type='UniformQuantizer', granularity='channel', symmetric=True, observer='minmax'),
        act=dict(type='UniformQuantizer', granularity='tensor', symmetric=False, observer='minmax'),
        per_point=dict(softmax=dict(type='Log2Quantizer')),     # quantizer settings per point
        per_type=dict(qkv=dict(w_bits=6, weight=dict(granularity='head'))),  # per module type
        overrides={'backbone.layers.0.attn.qkv': dict(w_bits=3)},            # per layer (e.g. LampQ)
    )

`overrides` may also name a JSON file: a LampQ search's `lampq_w<W>a<A>_allocation.json` (its `allocation` entry) or a
plain {path: settings} dict, so that an allocation found by LampQ feeds PTQ, GPLQ or QAT.

Points: 'weight' (every quantized linear/conv), 'linear_input' (input of every linear and of the
patch embedding, except fc2), 'gelu' (fc2's input, the GELU output), 'q' and 'k' (inputs of q @ k^T),
'softmax' and 'v' (inputs of attn @ v). LayerNorm stays float. Module types: 'patch_embed', 'qkv',
'proj', 'fc1', 'fc2', 'head', 'linear' (any other linear), 'qk' and 'av' (the two attention matmuls).
Precedence, lowest first: weight/act, per_point, per_type, overrides; a level that names another
quantizer `type` inherits only the settings that type accepts. Bits: w_bits/a_bits,
first_last_bits, per_type, overrides. A `per_point` or `per_type` entry that no layer of the model has is
an error (see quantize_model). Errors name the field from `where`, the qconfig's path in the config
(e.g. 'model.backbone.qconfig').
"""
import inspect
import json
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

POINTS = ('weight', 'linear_input', 'gelu', 'q', 'k', 'softmax', 'v')
MODULE_TYPES = ('patch_embed', 'qkv', 'proj', 'fc1', 'fc2', 'head', 'linear', 'qk', 'av')
FIRST_LAST = ('patch_embed', 'head')
GRANULARITIES = ('tensor', 'channel', 'head', 'token')
BITS = range(2, 9)
_LAYER_KEYS = ('w_bits', 'a_bits', 'weight', 'act')

DEFAULT_WEIGHT = dict(type='UniformQuantizer', granularity='channel', symmetric=True, observer='minmax')
DEFAULT_ACT = dict(type='UniformQuantizer', granularity='tensor', symmetric=False, observer='minmax')


def _inherit(base: Mapping, level: Mapping) -> dict:
    """`level` over `base`; when `level` names another quantizer type, only the settings of `base`
    that the new type accepts are inherited (e.g. LSQQuantizer keeps granularity, drops observer)."""
    from ..registry import QUANTIZERS
    if level.get('type', base['type']) != base['type']:
        accepted = inspect.signature(QUANTIZERS.get(level['type'])).parameters
        base = {k: v for k, v in base.items() if k in accepted}
    return {**base, **level}


def _check_bits(where: str, value: Any, allow_none: bool = False) -> None:
    if allow_none and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value not in BITS:
        allowed = 'an int in 2..8' + (' or None' if allow_none else '')
        raise ValueError(f'{where} must be {allowed}, got {value!r}')


def _check_keys(where: str, given: Mapping, allowed: tuple) -> None:
    if not isinstance(given, Mapping):
        raise ValueError(f'{where} must be a dict, got {type(given).__name__}')
    for key in given:
        if key not in allowed:
            raise ValueError(f'{where}: unknown key {key!r}, allowed: {allowed}')


def _check_quantizer(where: str, cfg: Mapping, weight: bool = False) -> None:
    from ..registry import QUANTIZERS
    if not isinstance(cfg, Mapping):
        raise ValueError(f'{where} must be a dict, got {type(cfg).__name__}')
    if 'type' in cfg and (not isinstance(cfg['type'], str) or QUANTIZERS.get(cfg['type']) is None):
        raise ValueError(f'{where}.type: unknown quantizer {cfg["type"]!r}, '
                         f'allowed: {tuple(sorted(QUANTIZERS.module_dict))}')
    if 'granularity' in cfg and cfg['granularity'] not in GRANULARITIES:
        raise ValueError(f'{where}.granularity must be one of {GRANULARITIES}, got {cfg["granularity"]!r}')
    if weight and cfg.get('granularity') == 'token':
        raise ValueError(f"{where}.granularity: 'token' is for activations, "
                         "allowed for weights: ('tensor', 'channel', 'head')")
    if 'bits' in cfg:
        raise ValueError(f'{where}: set bits with w_bits / a_bits, not inside the quantizer dict')


def _try_quantizer(where: str, cfg: Mapping) -> None:
    """Build the quantizer `cfg` describes (default shapes), so a bad value fails now, named by its full path."""
    from ..registry import QUANTIZERS
    cls = QUANTIZERS.get(cfg['type'])
    accepted = tuple(name for name in inspect.signature(cls).parameters if name != 'bits')
    for key in cfg:
        if key != 'type' and key not in accepted:
            raise ValueError(f'{where}: unknown key {key!r} for {cfg["type"]}, allowed: {accepted}')
    try:
        cls(**{k: v for k, v in cfg.items() if k != 'type'})
    except (ValueError, TypeError) as e:
        message, field = str(e), str(e).split(' ', 1)[0]
        for kwargs in ('observer_kwargs', 'init_kwargs'):
            if field in (cfg.get(kwargs) or {}):
                raise ValueError(f'{where}.{kwargs}.{message}') from None
        raise ValueError(f'{where}.{message}' if field in cfg else f'{where}: {message}') from None


def _read_overrides(where: str, path: str) -> dict:
    """The overrides in a JSON file: a LampQ report's `allocation`, or the file's whole dict."""
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, ValueError) as e:
        raise ValueError(f'{where}.overrides: cannot read the JSON file {path!r}: {e}') from e
    return data.get('allocation', data) if isinstance(data, dict) else data


def _check_layer(where: str, cfg: Mapping, weight: dict, act: dict) -> None:
    _check_keys(where, cfg, _LAYER_KEYS)
    for key in ('w_bits', 'a_bits'):
        if key in cfg:
            _check_bits(f'{where}.{key}', cfg[key])
    for key, base in (('weight', weight), ('act', act)):
        if key in cfg:
            _check_quantizer(f'{where}.{key}', cfg[key], weight=key == 'weight')
            _try_quantizer(f'{where}.{key}', _inherit(base, cfg[key]))


@dataclass(frozen=True)
class QConfig:
    """A validated qconfig; `quantizer_cfg` resolves the quantizer of one point of one layer."""

    w_bits: int = 8
    a_bits: int = 8
    first_last_bits: Optional[int] = 8
    points: tuple = POINTS
    weight: dict = field(default_factory=lambda: dict(DEFAULT_WEIGHT))
    act: dict = field(default_factory=lambda: dict(DEFAULT_ACT))
    per_point: dict = field(default_factory=dict)
    per_type: dict = field(default_factory=dict)
    overrides: dict = field(default_factory=dict)
    where: str = field(default='qconfig', compare=False)  # its path in the config, for error messages

    @classmethod
    def from_dict(cls, cfg: 'Mapping | QConfig | None', where: str = 'qconfig') -> 'QConfig':
        """Validate a qconfig dict (None: the defaults, W8A8 everywhere); `where` is its path in the config
        (e.g. 'model.backbone.qconfig'), which every error message starts with."""
        if isinstance(cfg, QConfig):
            return cfg
        cfg = dict(cfg or {})
        _check_keys(where, cfg, tuple(k for k in cls.__dataclass_fields__ if k != 'where'))
        _check_bits(f'{where}.w_bits', cfg.get('w_bits', 8))
        _check_bits(f'{where}.a_bits', cfg.get('a_bits', 8))
        _check_bits(f'{where}.first_last_bits', cfg.get('first_last_bits', 8), allow_none=True)
        points = cfg.get('points', POINTS)
        if isinstance(points, str) or not all(p in POINTS for p in points):
            raise ValueError(f'{where}.points must be a list of {POINTS}, got {points!r}')
        cfg['points'] = tuple(points)
        _check_quantizer(f'{where}.weight', cfg.get('weight', {}), weight=True)
        _check_quantizer(f'{where}.act', cfg.get('act', {}))
        cfg['weight'] = _inherit(DEFAULT_WEIGHT, cfg.get('weight', {}))
        cfg['act'] = _inherit(DEFAULT_ACT, cfg.get('act', {}))
        _try_quantizer(f'{where}.weight', cfg['weight'])
        _try_quantizer(f'{where}.act', cfg['act'])
        _check_keys(f'{where}.per_point', cfg.get('per_point', {}), POINTS)
        for point, qcfg in cfg.get('per_point', {}).items():
            _check_quantizer(f'{where}.per_point.{point}', qcfg, weight=point == 'weight')
            _try_quantizer(f'{where}.per_point.{point}', _inherit(cfg['weight' if point == 'weight' else 'act'], qcfg))
        _check_keys(f'{where}.per_type', cfg.get('per_type', {}), MODULE_TYPES)
        for mtype, layer in cfg.get('per_type', {}).items():
            _check_layer(f'{where}.per_type.{mtype}', layer, cfg['weight'], cfg['act'])
        if isinstance(cfg.get('overrides'), str):
            cfg['overrides'] = _read_overrides(where, cfg['overrides'])
        if not isinstance(cfg.get('overrides', {}), Mapping):
            raise ValueError(f'{where}.overrides must be a dict of module path -> settings, or a JSON file of one')
        for path, layer in cfg.get('overrides', {}).items():
            _check_layer(f'{where}.overrides[{path!r}]', layer, cfg['weight'], cfg['act'])
        return cls(**cfg, where=where)

    def bits(self, path: str, module_type: str, point: str) -> int:
        """Bits of `point` of the layer at `path`."""
        key = 'w_bits' if point == 'weight' else 'a_bits'
        bits = getattr(self, key)
        if module_type in FIRST_LAST and self.first_last_bits is not None:
            bits = self.first_last_bits
        bits = self.per_type.get(module_type, {}).get(key, bits)
        return self.overrides.get(path, {}).get(key, bits)

    def quantizer_cfg(self, path: str, module_type: str, point: str) -> Optional[dict]:
        """The quantizer config of `point` at `path`, or None when that point stays float."""
        if point not in self.points:
            return None
        key = 'weight' if point == 'weight' else 'act'
        cfg = dict(getattr(self, key))
        for level in (self.per_point.get(point, {}), self.per_type.get(module_type, {}).get(key, {}),
                      self.overrides.get(path, {}).get(key, {})):
            cfg = _inherit(cfg, level)
        cfg['bits'] = self.bits(path, module_type, point)
        return cfg
