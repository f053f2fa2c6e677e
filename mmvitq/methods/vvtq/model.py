"""VVTQ: variation-aware QAT of a ViT/Swin classifier or detector: LSQ on weights and activations, all trained,
with the oscillation regulariser on a cosine ramp.

    model = dict(type='VVTQ', architecture=_base_.model, checkpoint='float.pth',
                 qconfig=_base_.vvtq_qconfig, regularizer=dict(weight=0.01, start=0.25))

`architecture` is any mmpretrain classifier or mmdet detector with a ViT/Swin backbone; its backbone is
quantized with `qconfig` and starts from the float `checkpoint`. The multi-crop distillation lives in the
data: `LabelBankDataset` gives each crop the teacher's soft label as `gt_score`, and the loss is the soft
cross-entropy against it, so no teacher runs here. The quantizers are initialised from data before the first step
by `QuantizerInitHook`; `ProgressHook` tells the model how far training is, for the ramp.
"""
from typing import Optional

import torch
from torch import Tensor

from ...quantizers import BaseQuantizer
from ..base import register_algorithm
from ..qat import QAT
from .regularizer import cosine_ramp, oscillation_regularizer

REGULARIZER_KEYS = ('weight', 'start')


def _check_regularizer(cfg: Optional[dict]) -> Optional[dict]:
    if cfg is None:
        return None
    if not isinstance(cfg, dict) or set(cfg) - set(REGULARIZER_KEYS):
        raise ValueError(f'model.regularizer must be None or a dict with keys {REGULARIZER_KEYS}, got {cfg!r}')
    cfg = dict(dict(weight=0.01, start=0.25), **cfg)
    for key, high in (('weight', float('inf')), ('start', 1.0)):
        value = cfg[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < high:
            raise ValueError(f'model.regularizer.{key} must be a number in [0, {high}), got {value!r}')
    return cfg


@register_algorithm
class VVTQ(QAT):
    """Plain QAT plus the oscillation regulariser and the banked soft labels (see the module docstring).

    Args:
        architecture: config of the float model (classifier or detector).
        qconfig: quantization of the backbone (see mmvitq.models.qconfig; `_base_/vvtq.py` has the method's).
        checkpoint: float weights of `architecture` to start from (None: its own init).
        regularizer: dict(weight=final weight, start=fraction of training where its cosine ramp begins), or
            None for plain LSQ.
        compact_activations: see QuantAlgorithm.
    """

    def __init__(self, architecture: dict, qconfig: dict, checkpoint: Optional[str] = None,
                 regularizer: Optional[dict] = dict(weight=0.01, start=0.25),
                 compact_activations: Optional[bool] = None, data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        self.regularizer = _check_regularizer(regularizer)
        super().__init__(architecture, qconfig, checkpoint, compact_activations, data_preprocessor, init_cfg)
        self.progress = 0.0

    def quantized_weights(self) -> list[tuple[Tensor, BaseQuantizer]]:
        """(weight, its quantizer) of every quantized linear and conv whose weight quantizer runs."""
        return [(m.weight, m.weight_quant) for m in self.quantized_layers(enabled=True).values()]

    def regularizer_weight(self) -> float:
        if self.regularizer is None:
            return 0.0
        return cosine_ramp(self.progress, self.regularizer['weight'], self.regularizer['start'])

    def loss(self, inputs: Tensor, data_samples: list) -> dict:
        """Soft cross-entropy against banked soft labels (`gt_score`) when the samples have them, else the
        student's own losses; plus the ramped regulariser."""
        if data_samples and 'gt_score' in data_samples[0]:
            logits = self.student(inputs, mode='tensor')
            targets = torch.stack([s.gt_score for s in data_samples]).to(logits)
            losses = dict(loss_kd=-(targets * logits.log_softmax(dim=-1)).sum(dim=-1).mean())
        else:
            losses = self.student.loss(inputs, data_samples)
        weight = self.regularizer_weight()
        if weight > 0:
            losses['loss_osc'] = weight * oscillation_regularizer(self.quantized_weights())
        losses['osc_weight'] = torch.tensor(weight)
        return losses

