"""Loads mmvitq's compiled extension, the way mmcv.utils.ext_loader loads mmcv's."""
import importlib
from types import ModuleType
from typing import Optional

_FUNCS = ('fake_quant_forward', 'fake_quant_backward', 'fake_quant_per_token_forward', 'compiled_with_cuda')


def load_ext() -> Optional[ModuleType]:
    """Return mmvitq._ext, or None when it is not built (the caller falls back to the reference)."""
    try:
        ext = importlib.import_module('mmvitq._ext')
    except ImportError:
        return None
    missing = [f for f in _FUNCS if not hasattr(ext, f)]
    if missing:
        raise ImportError(f'mmvitq._ext is stale, it lacks {missing}: rebuild it with `make install`')
    return ext
