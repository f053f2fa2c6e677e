"""Small helpers shared by the tools."""
from .process import run_measured

__all__ = ['run_measured']
