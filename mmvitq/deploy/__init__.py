"""Deploy quantized models: ONNX QDQ export, onnxruntime execution and packed checkpoints.

The export pieces are imported on first use (`mmvitq.deploy.export_onnx`), so importing mmvitq needs neither onnx
nor onnxruntime and registers no export op.
"""
import importlib

_LAZY = {'EXPORT_RULES': 'modules', 'ExportError': 'modules', 'exportable': 'modules',
         'register_export_rule': 'modules', 'export_onnx': 'onnx_export', 'pack_state_dict': 'pack',
         'unpack_checkpoint': 'pack'}

__all__ = list(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f'.{_LAZY[name]}', __name__), name)
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
