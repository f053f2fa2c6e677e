"""LampQ's bit allocation as an exact integer linear program (scipy.optimize.milp, HiGHS).

Each unit (a layer) picks exactly one of its options (a bit width, or a (weight, activation) pair); an
option has a cost (its sensitivity) and a use of every resource (weight bits, activation bits, BOPs).
The program minimises the total cost with every resource's total at most its budget:

    min  sum_u sum_o cost[u][o] x[u, o]
    s.t. sum_o x[u, o] = 1                          for every unit u
         sum_u sum_o use[r][u][o] x[u, o] <= budget[r]   for every resource r
         x binary
"""
from typing import Mapping, Sequence

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp


class InfeasibleBudget(ValueError):
    """No allocation fits the budgets; the message names the budget and the least it can be."""


def _least_use(use: Sequence[Sequence[float]]) -> float:
    return float(sum(min(options) for options in use))


def solve_allocation(costs: Sequence[Sequence[float]], uses: Mapping[str, Sequence[Sequence[float]]],
                     budgets: Mapping[str, float]) -> list[int]:
    """The option index of every unit minimising the total cost within the budgets (exact).

    Args:
        costs: costs[u][o], the cost of option o of unit u (units may have different numbers of options).
        uses: uses[r][u][o], the amount of resource r that option o of unit u uses.
        budgets: budgets[r], the most resource r may total; every resource of `uses` needs one.
    Raises:
        InfeasibleBudget: a budget below the least its resource can total, or budgets that no single
            allocation meets together.
    """
    sizes = [len(c) for c in costs]
    if not sizes or min(sizes) < 1:
        raise ValueError('solve_allocation: every unit needs at least one option')
    missing = set(uses) ^ set(budgets)
    if missing:
        raise ValueError(f'solve_allocation: uses and budgets must name the same resources, mismatch: {missing}')
    for name, use in uses.items():
        if [len(u) for u in use] != sizes:
            raise ValueError(f'solve_allocation: uses[{name!r}] does not have one entry per option of each unit')
        least = _least_use(use)
        if budgets[name] < least - 1e-9 * max(1.0, abs(least)):
            raise InfeasibleBudget(f'budget {name!r} = {budgets[name]:g} is infeasible: the least any allocation '
                                   f'uses is {least:g}')
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    n = int(offsets[-1])
    one_each = np.zeros((len(sizes), n))
    for u, (lo, hi) in enumerate(zip(offsets[:-1], offsets[1:])):
        one_each[u, lo:hi] = 1
    constraints = [LinearConstraint(one_each, 1, 1)]
    for name, use in uses.items():  # rows scaled to budget ~1, so the solver's tolerances are relative
        row = np.concatenate([np.asarray(u, dtype=float) for u in use])
        scale = max(abs(budgets[name]), float(np.abs(row).max()), 1e-30)
        constraints.append(LinearConstraint(row[None] / scale, -np.inf, budgets[name] / scale))
    c = np.concatenate([np.asarray(cost, dtype=float) for cost in costs])
    result = milp(c, constraints=constraints, integrality=np.ones(n), bounds=Bounds(0, 1))
    if result.status == 2:
        raise InfeasibleBudget(f'budgets {dict(budgets)} are infeasible together (each alone can be met)')
    if not result.success:
        raise RuntimeError(f'solve_allocation: the ILP solver failed: {result.message}')
    x = np.round(result.x).astype(int)
    return [int(np.argmax(x[lo:hi])) for lo, hi in zip(offsets[:-1], offsets[1:])]
