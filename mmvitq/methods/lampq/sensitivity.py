"""LampQ's sensitivity: for every quantized layer and candidate bit width b, the Fisher-weighted
quantization error Omega(b) = 1/2 sum_i F_ii delta_i(b)^2 of its weight and of its input activations.

F is the empirical Fisher diagonal: squared gradients of the task loss, averaged over the calibration
batches (weights: the batch gradient of the weight; activations: the gradient reaching the tensor the
layer consumes). delta(b) is what a quantizer calibrated at b bits changes in that tensor. The model may
run in float (first round) or quantized with the current allocation (later rounds).
"""
import copy
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator, Optional, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from ...models.modules import QuantConv2d, QuantLinear, QuantMatMul
from ...quantizers import BaseQuantizer, calibration, disabled
from ...quantizers.observers import Observer


@dataclass(eq=False)
class Unit:
    """A quantized layer that gets bits: its weight quantizer (if any), its input quantizers and its sizes
    per image (weight elements, input elements, multiply-accumulates)."""

    path: str
    module: nn.Module
    module_type: str
    weight_quant: Optional[BaseQuantizer]
    act_quants: list = field(default_factory=list)
    params: int = 0
    act_elements: float = 0.0
    macs: float = 0.0

    @property
    def quantizers(self) -> list[BaseQuantizer]:
        return ([self.weight_quant] if self.weight_quant is not None else []) + self.act_quants


def find_units(model: nn.Module) -> list[Unit]:
    """Every QuantLinear, QuantConv2d and QuantMatMul of `model` that has a quantizer, in module order."""
    units = []
    for path, module in model.named_modules():
        if isinstance(module, (QuantLinear, QuantConv2d)):
            weight, acts = module.weight_quant, [module.input_quant]
        elif isinstance(module, QuantMatMul):
            weight, acts = None, [module.a_quant, module.b_quant]
        else:
            continue
        acts = [q for q in acts if q is not None]
        if weight is not None or acts:
            units.append(Unit(path, module, module.module_type, weight, acts,
                              params=module.weight.numel() if weight is not None else 0))
    return units


@contextmanager
def float_units(units: Sequence[Unit]) -> Iterator[None]:
    """Every unit quantizer disabled (the float model) while open; restored after."""
    with disabled(q for u in units for q in u.quantizers):
        yield


def model_loss(model: nn.Module, data: dict) -> Tensor:
    """The total task loss of a preprocessed batch (mmengine: the sum of every `loss*` entry)."""
    return model.parse_losses(model(**data, mode='loss'))[0]


@torch.no_grad()
def measure_units(model: nn.Module, units: Sequence[Unit], data: dict) -> None:
    """Fill each unit's input elements and multiply-accumulates per image from one forward pass of `data`."""
    images = data['inputs'].shape[0]

    def hook(unit: Unit, module: nn.Module, args: tuple, out: Tensor) -> None:
        if isinstance(module, QuantMatMul):
            a, b = args
            unit.act_elements = (a.numel() + b.numel()) / images
            unit.macs = out.numel() * a.shape[-1] / images
        elif isinstance(module, QuantConv2d):
            unit.act_elements = args[0].numel() / images
            unit.macs = out.numel() * module.weight[0].numel() / images
        else:
            unit.act_elements = args[0].numel() / images
            unit.macs = out.numel() * module.in_features / images

    handles = [u.module.register_forward_hook(lambda m, a, o, u=u: hook(u, m, a, o)) for u in units]
    try:
        with float_units(units):
            model(**data, mode='tensor')
    finally:
        for handle in handles:
            handle.remove()


def _observe(model: nn.Module, units: Sequence[Unit], quantizers: Sequence[BaseQuantizer],
             batches: Sequence[dict]) -> dict[BaseQuantizer, Observer]:
    """Calibrate `quantizers` on `batches` with every other unit quantizer in float; returns their observers,
    statistics included."""
    with float_units(units):
        for q in quantizers:
            q.enabled = True
        with calibration(model, quantizers):
            for data in batches:
                model(**data, mode='tensor')
            return {q: q.observer for q in quantizers}  # before the exit freezes them and drops the statistics


@torch.no_grad()
def bit_variants(model: nn.Module, units: Sequence[Unit], batches: Sequence[dict],
                 bits: Sequence[int]) -> dict[BaseQuantizer, list[BaseQuantizer]]:
    """Copies of every unit quantizer calibrated at each of `bits` on `batches` (the float model's tensors),
    as the qconfig's quantizer calibrates at that width. Statistics that do not depend on the grid (min-max,
    percentile, LSQ init) are observed once and reused; others (MSE) are observed again per width. The
    model's own quantizers are left as found."""
    quantizers = [q for u in units for q in u.quantizers]
    saved = {q: (copy.deepcopy(q.state_dict()), q.enabled, q.accept_state_bits) for q in quantizers}
    variants, statistics = {q: [] for q in quantizers}, {}
    for q in quantizers:
        q.accept_state_bits = True  # their states are restored below at the widths they had
    try:
        for b in bits:
            for q in quantizers:
                q.set_bits(b)
            again = [q for q in quantizers if q not in statistics or not statistics[q].grid_free]
            for q in quantizers:
                if q not in again:
                    q.calibrate_from(statistics[q])
            observed = _observe(model, units, again, batches)
            statistics.update({q: o for q, o in observed.items() if q.granularity != 'token'})  # token: none
            for q in quantizers:
                q.enabled = True
                variants[q].append(copy.deepcopy(q))
    finally:
        for q, (state, enabled, accept) in saved.items():
            q.load_state_dict(state)
            q.reset_observer()
            q.enabled, q.accept_state_bits = enabled, accept
    return variants


def _accumulate_activation(out: Tensor, x: Tensor, candidates: Sequence[BaseQuantizer], omega: np.ndarray,
                           weight: float) -> None:
    """When the gradient g of `out` arrives, add weight * 1/2 sum g^2 (x - q_b(x))^2 for every candidate q_b."""

    def on_grad(grad: Tensor) -> None:
        with torch.no_grad():
            grad2 = grad.float().square()
            for j, candidate in enumerate(candidates):
                omega[j] += weight * 0.5 * float((grad2 * (x - candidate(x)).square()).sum())

    if out.requires_grad:
        out.register_hook(on_grad)


def fisher_sensitivities(model: nn.Module, units: Sequence[Unit], batches: Sequence[dict],
                         variants: dict[BaseQuantizer, list[BaseQuantizer]]) -> tuple[list, list]:
    """Omega of each unit's weight and of its inputs at every candidate width: two lists with, per unit, an
    array over the widths of `variants` (None where the unit has no such quantizer)."""
    count = len(variants[next(iter(variants))])
    weight_omega = [np.zeros(count) if u.weight_quant is not None else None for u in units]
    act_omega = [np.zeros(count) if u.act_quants else None for u in units]
    with torch.no_grad():
        weight_error2 = {u: [(u.module.weight - v(u.module.weight)).square() for v in variants[u.weight_quant]]
                         for u in units if u.weight_quant is not None}
    share = 1.0 / len(batches)
    handles = [q.register_forward_hook(lambda m, args, out, q=q, i=i: _accumulate_activation(
        out, args[0].detach(), variants[q], act_omega[i], share)) for i, u in enumerate(units) for q in u.act_quants]
    params = [p for p in model.parameters()]
    requires = [p.requires_grad for p in params]
    try:
        for p in params:
            p.requires_grad_(True)
        for data in batches:
            model.zero_grad(set_to_none=True)
            inputs = data['inputs'].detach().requires_grad_()  # so the patch embedding's input has a gradient
            model_loss(model, {**data, 'inputs': inputs}).backward()
            with torch.no_grad():
                for i, unit in enumerate(units):
                    if unit.weight_quant is not None:
                        grad2 = unit.module.weight.grad.float().square()
                        weight_omega[i] += [share * 0.5 * float((grad2 * e2).sum()) for e2 in weight_error2[unit]]
    finally:
        for handle in handles:
            handle.remove()
        model.zero_grad(set_to_none=True)
        for p, flag in zip(params, requires):
            p.requires_grad_(flag)
    return weight_omega, act_omega
