"""LampQ's ILP against brute force: the optimum, the budgets, and the errors for infeasible budgets."""
import itertools

import numpy as np
import pytest

from mmvitq.methods.lampq.ilp import InfeasibleBudget, solve_allocation


def brute_force(costs, uses, budgets):
    """The least total cost over every allocation within the budgets (None when none fits)."""
    best = None
    for choice in itertools.product(*(range(len(c)) for c in costs)):
        if all(sum(use[u][o] for u, o in enumerate(choice)) <= budgets[r] + 1e-9 for r, use in uses.items()):
            total = sum(costs[u][o] for u, o in enumerate(choice))
            best = total if best is None else min(best, total)
    return best


def random_instance(rng, units, options, resources):
    sizes = rng.integers(1, options + 1, size=units)
    costs = [rng.exponential(size=k).tolist() for k in sizes]
    uses = {f'r{i}': [(rng.integers(1, 50, size=k) * 1000.0).tolist() for k in sizes] for i in range(resources)}
    return costs, uses


@pytest.mark.parametrize('seed', range(12))
def test_optimal_against_brute_force(seed):
    rng = np.random.default_rng(seed)
    costs, uses = random_instance(rng, units=5, options=4, resources=1 + seed % 2)
    least = {r: sum(min(u) for u in use) for r, use in uses.items()}
    most = {r: sum(max(u) for u in use) for r, use in uses.items()}
    budgets = {r: least[r] + rng.uniform(0.2, 0.8) * (most[r] - least[r]) for r in uses}
    expected = brute_force(costs, uses, budgets)
    try:
        choice = solve_allocation(costs, uses, budgets)
    except InfeasibleBudget:
        assert expected is None  # two resources can clash although each alone fits
        return
    assert expected is not None
    for r, use in uses.items():
        assert sum(use[u][o] for u, o in enumerate(choice)) <= budgets[r] + 1e-6
    assert sum(costs[u][o] for u, o in enumerate(choice)) == pytest.approx(expected, rel=1e-9)


def test_bit_allocation_by_hand():
    # Two layers of 100 and 300 weights choosing 2, 4 or 8 bits. At an average of 4 bits (1600), 8 bits for
    # the small, sensitive layer leave 800 bits, 2.67 per weight of the big one: 2 bits, total cost 3 (uniform
    # 4 bits costs 5). One bit less than 1400 rules that out: 4 and 2 bits (cost 7) beat 2 and 2 (19).
    costs = [[16.0, 4.0, 0.0], [3.0, 1.0, 0.0]]
    uses = {'weight_bits': [[200, 400, 800], [600, 1200, 2400]]}
    assert solve_allocation(costs, uses, {'weight_bits': 1600}) == [2, 0]
    assert solve_allocation(costs, uses, {'weight_bits': 1399}) == [1, 0]
    assert solve_allocation(costs, uses, {'weight_bits': 2000}) == [2, 1]
    assert solve_allocation(costs, uses, {'weight_bits': 3200}) == [2, 2]


def test_infeasible_budget_names_the_resource_and_its_least():
    uses = {'weight_bits': [[200, 400], [600, 1200]], 'bops': [[1, 2], [1, 2]]}
    message = r"'weight_bits' = 700 is infeasible: the least any allocation uses is 800"
    with pytest.raises(InfeasibleBudget, match=message):
        solve_allocation([[1, 0], [1, 0]], uses, {'weight_bits': 700, 'bops': 4})


def test_budgets_infeasible_only_together():
    # weight bits forces unit 0 to option 0 and unit 1 to option 0 ... but the second resource needs option 1.
    costs = [[0, 0], [0, 0]]
    uses = {'a': [[1, 2], [1, 2]], 'b': [[2, 1], [2, 1]]}
    with pytest.raises(InfeasibleBudget, match='infeasible together'):
        solve_allocation(costs, uses, {'a': 2, 'b': 2})


def test_bad_arguments():
    with pytest.raises(ValueError, match='same resources'):
        solve_allocation([[0]], {'a': [[1]]}, {'b': 1})
    with pytest.raises(ValueError, match='one entry per option'):
        solve_allocation([[0, 1]], {'a': [[1]]}, {'a': 1})
