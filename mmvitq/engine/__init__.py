"""mmengine pieces shared by the methods: checkpoint loading, loops and hooks."""
from .checkpoint import load_from_local

__all__ = ['load_from_local']
