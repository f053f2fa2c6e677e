"""mmvitq: quantize Vision Transformers to 2-4 bits inside OpenMMLab.

Importing it (e.g. `custom_imports=dict(imports=['mmvitq'])`) registers the quantizers and the
quantized backbones in mmpretrain's, mmdet's and mmvitq's registries.
"""
from . import engine, quantizers  # noqa: F401  (registers the runner, loops, hooks and quantizers)
from .models import QConfig, quantize_model
from .version import __version__

__all__ = ['__version__', 'quantize_model', 'QConfig']
