"""LampQ: layer-wise mixed precision by type-aware Fisher sensitivity and integer linear programming."""
from .ilp import InfeasibleBudget, solve_allocation
from .search import SearchResult, search_allocation
from .sensitivity import Unit, find_units, fisher_sensitivities

__all__ = ['InfeasibleBudget', 'SearchResult', 'Unit', 'find_units', 'fisher_sensitivities', 'search_allocation',
           'solve_allocation']
