"""GPLQ's data-driven steps on calibration inputs: activation init and PCA (before stage 1), weight PTQ and
QwT compensation (stage 2). Pure torch on a `GPLQ` model; the mmengine loops feed them batches."""
from typing import Sequence

import torch
from torch import Tensor

from ...quantizers import calibration
from .compensation import RidgeRegression, run_until
from .model import GPLQ


@torch.no_grad()
def calibrate_activations(model: GPLQ, batches: Sequence[Tensor]) -> int:
    """Initialise every enabled quantizer of the student on `batches`; returns how many are calibrated."""
    model.eval()
    with calibration(model.student):
        for inputs in batches:
            model.student.extract_feat(inputs)
    return sum(bool(q.calibrated) for q in model.activation_quantizers())


@torch.no_grad()
def fit_feature_pca(model: GPLQ, batches: Sequence[Tensor]) -> int:
    """Fit the PCA basis of the feature loss on the teacher's features; returns its number of components."""
    return model.fit_pca(torch.cat([model.teacher_features(inputs) for inputs in batches]))


@torch.no_grad()
def calibrate_weights(model: GPLQ) -> int:
    """Enable every weight quantizer and set its range from its own weight (data-free); returns how many."""
    layers = list(model.quantized_layers().values())
    for layer in layers:
        layer.weight_quant.calibrate(layer.weight)
    model.sync_weight_quant()
    return len(layers)


@torch.no_grad()
def fit_compensations(model: GPLQ, batches: Sequence[Tensor], ridge: float = 1e-4) -> list[float]:
    """QwT: block after block, regress (float-weight block - quantized block) output on the block's quantized
    input and fold the fit in as the block's compensation. Returns each block's R^2 (a fit with R^2 <= 0 is
    not applied)."""
    model.eval()
    scores = []
    for block, compensation in model.compensated_blocks():
        regression = RidgeRegression(ridge)
        for inputs in batches:
            args, kwargs = run_until(block, model.student.extract_feat, inputs)
            quantized = block(*args, **kwargs)
            with model.float_weights(block):
                reference = block(*args, **kwargs)
            regression.update(args[0], reference - quantized)
        weight, bias, r2 = regression.solve()
        if r2 > 0:
            compensation.set(weight, bias)
        scores.append(r2)
    return scores
