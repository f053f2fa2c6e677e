"""LampQ's search: type-aware Fisher sensitivities, bits by ILP under budgets, refined over rounds.

    allocation = search_allocation(model, batches, weight_bits=4.0)   # {layer path: dict(w_bits=., a_bits=.)}

Every quantized layer (each linear, the patch embedding, each attention matmul) is a unit; a unit with a
weight picks a (weight bits, input bits) pair, a matmul the bits of both its inputs. Round 1 measures the
sensitivities on the float model; each later round on the model quantized with the last allocation, until
the allocation repeats or `rounds` are done. The result is a qconfig `overrides` dict, so the allocation
feeds PTQ, GPLQ or QAT alike; the model is left with each quantizer at its allocated width, uncalibrated.
"""
import itertools
from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np
from torch import nn

from .ilp import solve_allocation
from .sensitivity import Unit, bit_variants, find_units, fisher_sensitivities, float_units, measure_units

FLOAT_BITS = 32  # bits of a tensor left in float, for BOPs


@dataclass
class SearchResult:
    """The allocation, the units it covers and, per round, the allocation found and its total cost."""

    allocation: dict
    units: list
    rounds: list = field(default_factory=list)


def type_normalised(omegas: Sequence[Optional[np.ndarray]], types: Sequence[str]) -> list[Optional[np.ndarray]]:
    """Each sensitivity table divided by the mean of its module type's tables (types on one scale)."""
    out = list(omegas)
    for t in set(types):
        members = [i for i, (o, u) in enumerate(zip(omegas, types)) if u == t and o is not None]
        mean = float(np.mean([omegas[i] for i in members])) if members else 0.0
        for i in members:
            out[i] = omegas[i] / mean if mean > 0 else omegas[i]
    return out


def _options(unit: Unit, bits: Sequence[int]) -> list[tuple[Optional[int], Optional[int]]]:
    weights = list(bits) if unit.weight_quant is not None else [None]
    acts = list(bits) if unit.act_quants else [None]
    return list(itertools.product(weights, acts))


def _check_budget(name: str, value: Optional[float], bits: Sequence[int], optional: bool = False) -> None:
    if optional and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not min(bits) <= value <= max(bits):
        raise ValueError(f'{name} must be a number in {min(bits)}..{max(bits)} (the candidate bits), got {value!r}')


def _budget_uses(units: Sequence[Unit], options: list, weight_bits: float, act_bits: float,
                 bops_bits: Optional[float]) -> tuple[dict, dict]:
    """What each option of each unit uses of every budgeted resource, and the budgets."""
    uses = {'weight_bits': [[u.params * (w or 0) for w, _ in opts] for u, opts in zip(units, options)],
            'act_bits': [[u.act_elements * (a or 0) for _, a in opts] for u, opts in zip(units, options)]}
    budgets = {'weight_bits': weight_bits * sum(u.params for u in units),
               'act_bits': act_bits * sum(u.act_elements for u in units if u.act_quants)}
    if bops_bits is not None:
        uses['bops'] = [[u.macs * (w or FLOAT_BITS) * (a or FLOAT_BITS) if u.weight_quant is not None
                         else u.macs * (a or FLOAT_BITS)**2 for w, a in opts] for u, opts in zip(units, options)]
        budgets['bops'] = bops_bits**2 * sum(u.macs for u in units)
    return uses, budgets


def check_feasible(units: Sequence[Unit], bits: Sequence[int], weight_bits: float, act_bits: float,
                   bops_bits: Optional[float], where: str = 'LampQ: ') -> None:
    """Raise ValueError, before any calibration or Fisher pass, when a budget is below the least that any allocation
    of these units to the candidate `bits` uses (e.g. a BOPs budget with inputs that stay float at 32 bits)."""
    uses, budgets = _budget_uses(units, [_options(u, bits) for u in units], weight_bits, act_bits, bops_bits)
    totals = {'weight_bits': max(sum(u.params for u in units), 1),
              'act_bits': max(sum(u.act_elements for u in units if u.act_quants), 1),
              'bops': max(sum(u.macs for u in units), 1)}
    for name, use in uses.items():
        least = sum(min(options) for options in use)
        if least > budgets[name] * (1 + 1e-9):
            floor = least / totals[name]
            floor = floor**0.5 if name == 'bops' else floor
            given = {'weight_bits': weight_bits, 'act_bits': act_bits, 'bops': bops_bits}[name]
            raise ValueError(f'{where}{"bops_bits" if name == "bops" else name}={given:g} cannot be met: the least '
                             f'any allocation to bits {tuple(bits)} reaches is {floor:.3f} (layers whose inputs stay '
                             f'float count {FLOAT_BITS} bits); allowed: >= {floor:.3f}')


def allocate(units: Sequence[Unit], weight_omega: list, act_omega: list, bits: Sequence[int], weight_bits: float,
             act_bits: float, bops_bits: Optional[float], type_aware: bool = True) -> tuple[list, float]:
    """The ILP over the units' (weight bits, input bits) options: the chosen pairs and their total cost."""
    w_norm, a_norm = weight_omega, act_omega
    if type_aware:
        w_norm = type_normalised(weight_omega, [u.module_type for u in units])
        a_norm = type_normalised(act_omega, [u.module_type + '.input' for u in units])
    index = {b: j for j, b in enumerate(bits)}
    options = [_options(u, bits) for u in units]
    costs = [[(w_norm[i][index[w]] if w else 0.0) + (a_norm[i][index[a]] if a else 0.0) for w, a in opts]
             for i, opts in enumerate(options)]
    uses, budgets = _budget_uses(units, options, weight_bits, act_bits, bops_bits)
    choice = solve_allocation(costs, uses, budgets)
    return [opts[c] for opts, c in zip(options, choice)], float(sum(c[k] for c, k in zip(costs, choice)))


def _set_bits(units: Sequence[Unit], pairs: Sequence[tuple], bits: Sequence[int],
              variants: Optional[dict] = None) -> None:
    """Give each unit its (weight, input) bits; with `variants` (one per width of `bits`), also their
    calibrated ranges at those bits, else the quantizers are left uncalibrated."""
    for unit, (w, a) in zip(units, pairs):
        widths = [(unit.weight_quant, w)] if w is not None else []
        for q, b in widths + [(q, a) for q in unit.act_quants]:
            q.enabled = True
            if variants is None:
                q.set_bits(b)
                q.reset()
            else:
                q.load_state_dict(variants[q][bits.index(b)].state_dict())


def check_search_args(weight_bits: float, act_bits: Optional[float], bops_bits: Optional[float], bits: Sequence[int],
                      rounds: int, type_aware: bool, where: str = 'LampQ: ') -> list[int]:
    """Raise ValueError naming the bad setting (prefixed by `where`, e.g. 'test_cfg.') of `search_allocation`;
    returns the sorted candidate widths."""
    widths = isinstance(bits, (list, tuple)) and bits and all(
        isinstance(b, int) and not isinstance(b, bool) and 2 <= b <= 8 for b in bits)
    if not widths:
        raise ValueError(f'{where}bits must be a list of widths in 2..8, got {bits!r}')
    bits = sorted(set(bits))
    _check_budget(f'{where}weight_bits', weight_bits, bits)
    _check_budget(f'{where}act_bits', weight_bits if act_bits is None else act_bits, bits)
    _check_budget(f'{where}bops_bits', bops_bits, bits, optional=True)
    if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 1:
        raise ValueError(f'{where}rounds must be an int >= 1, got {rounds!r}')
    if not isinstance(type_aware, bool):
        raise ValueError(f'{where}type_aware must be True or False, got {type_aware!r}')
    return bits


def set_allocation(units: Sequence[Unit], allocation: dict) -> None:
    """Give each unit its widths from `allocation` ({unit path: dict(w_bits=., a_bits=.)}), uncalibrated."""
    for unit in units:
        widths = allocation.get(unit.path, {})
        pairs = [(unit.weight_quant, widths.get('w_bits'))] + [(q, widths.get('a_bits')) for q in unit.act_quants]
        for quantizer, bits in pairs:
            if quantizer is not None and bits is not None:
                quantizer.accept_state_bits = True
                quantizer.set_bits(bits)
                quantizer.reset()


def search_allocation(model: nn.Module, batches: Sequence[dict], weight_bits: float = 4.0,
                      act_bits: Optional[float] = None, bops_bits: Optional[float] = None,
                      bits: Sequence[int] = (2, 3, 4, 5, 6, 8), rounds: int = 3,
                      type_aware: bool = True, where: str = 'LampQ: ') -> SearchResult:
    """LampQ on a quantized mmengine model (see the module docstring).

    Args:
        batches: preprocessed batches (dicts with `inputs` and `data_samples`) for the quantizer ranges at
            each width and for the Fisher information.
        weight_bits: the budget of average bits per weight element over every quantized weight.
        act_bits: the budget of average bits per quantized input element, per image (None: `weight_bits`).
        bops_bits: optional BOPs budget, as the uniform width with the same BOPs (sum of MACs * w * a).
        bits: the candidate widths.
        rounds: at most this many sensitivity + ILP rounds (the first on the float model).
        type_aware: normalise the sensitivities within each module type (False: raw Fisher values compete).
        where: prefix of error messages about these settings (the caller's config path, e.g. 'test_cfg.').
    """
    bits = check_search_args(weight_bits, act_bits, bops_bits, bits, rounds, type_aware, where)
    act_bits = weight_bits if act_bits is None else act_bits
    if not batches:
        raise ValueError('LampQ: no calibration batches')
    units = find_units(model)
    if not units:
        raise ValueError('LampQ: the model has no quantized layer (build it with a quantized backbone)')
    for quantizer in (q for u in units for q in u.quantizers):
        quantizer.accept_state_bits = True  # the search moves widths and restores states at other widths
    model.eval()
    measure_units(model, units, batches[0])
    check_feasible(units, bits, weight_bits, act_bits, bops_bits, where)
    variants = bit_variants(model, units, batches, bits)
    result, pairs = SearchResult({}, units), None
    for _ in range(rounds):
        if pairs is None:  # round 1: the float model
            with float_units(units):
                weight_omega, act_omega = fisher_sensitivities(model, units, batches, variants)
        else:
            _set_bits(units, pairs, bits, variants)
            weight_omega, act_omega = fisher_sensitivities(model, units, batches, variants)
        new, cost = allocate(units, weight_omega, act_omega, bits, weight_bits, act_bits, bops_bits, type_aware)
        result.rounds.append(dict(allocation=new, cost=cost))
        if new == pairs:
            break
        pairs = new
    _set_bits(units, pairs, bits)
    result.allocation = {u.path: {k: v for k, v in (('w_bits', w), ('a_bits', a)) if v is not None}
                         for u, (w, a) in zip(units, pairs)}
    return result
