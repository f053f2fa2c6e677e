"""mmvitq: quantize Vision Transformers to 2-4 bits inside OpenMMLab."""
from .version import __version__

__all__ = ['__version__']
