"""mmvitq: quantize Vision Transformers to 2-8 bits inside OpenMMLab, and deploy them.

Importing it (e.g. `custom_imports=dict(imports=['mmvitq'])`) registers the quantizers, and, when the OpenMMLab
libraries are installed, the quantized backbones, method models, runner, loops and hooks in mmpretrain's, mmdet's,
mmengine's and mmvitq's registries. `quantize_model` needs neither mmpretrain, mmdet nor mmcv for a timm model.
"""
from . import quantizers  # noqa: F401  (registers the quantizers)
from .models import QConfig, quantize_model
from .version import __version__


def _openmmlab() -> bool:
    """Whether mmpretrain and mmdet, which mmvitq registers its backbones and methods into, can be imported."""
    try:
        import mmdet  # noqa: F401
        import mmpretrain  # noqa: F401
    except ImportError:
        return False
    return True


if _openmmlab():
    from . import engine  # noqa: F401  (registers the runner, loops and hooks, and the method models)
    from .models import backbones  # noqa: F401  (registers the quantized backbones in mmpretrain and mmdet)

__all__ = ['__version__', 'quantize_model', 'QConfig']
