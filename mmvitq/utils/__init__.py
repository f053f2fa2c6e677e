"""Small helpers shared by the tools."""
from .process import run_measured
from .random_state import get_random_state, preserved_random_state, set_random_state

__all__ = ['run_measured', 'get_random_state', 'set_random_state', 'preserved_random_state']
