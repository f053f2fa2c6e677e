"""VVTQ: variation-aware QAT of a ViT/Swin classifier or detector: LSQ on weights and activations, all trained,
with the oscillation regulariser on a cosine ramp.

    model = dict(type='VVTQ', architecture=_base_.model, checkpoint='float.pth',
                 qconfig=_base_.vvtq_qconfig, regularizer=dict(weight=0.01, start=0.25))

`architecture` is any mmpretrain classifier or mmdet detector with a ViT/Swin backbone; its backbone is
quantized with `qconfig` and starts from the float `checkpoint`. The multi-crop distillation lives in the
data: `LabelBankDataset` gives each crop the teacher's soft label as `gt_score`, and the loss is the soft
cross-entropy against it, so no teacher runs here. The quantizers are initialised from data before the first step
by `QuantizerInitHook`; `TrainingProgressHook` tells the model how far training is, for the ramp.
"""
from typing import Optional

import torch
from mmdet.registry import MODELS as MMDET_MODELS
from mmengine.model import BaseModel
from mmengine.registry import MODELS as ROOT_MODELS
from mmpretrain.registry import MODELS as MMPRETRAIN_MODELS
from torch import Tensor

from ...models import QConfig, QuantConv2d, QuantLinear, quantize_model
from ...models.checkpoint import load_float_checkpoint
from ...quantizers import BaseQuantizer
from ...registry import MODELS
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


class VVTQ(BaseModel):
    """A quantized student trained with LSQ, plus the oscillation regulariser (see the module docstring).

    Args:
        architecture: config of the float model (classifier or detector).
        qconfig: quantization of the backbone (see mmvitq.models.qconfig; `_base_/vvtq.py` has the method's).
        checkpoint: float weights of `architecture` to start from (None: its own init).
        regularizer: dict(weight=final weight, start=fraction of training where its cosine ramp begins), or
            None for plain LSQ.
    """

    def __init__(self, architecture: dict, qconfig: dict, checkpoint: Optional[str] = None,
                 regularizer: Optional[dict] = dict(weight=0.01, start=0.25), data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        self.regularizer = _check_regularizer(regularizer)
        architecture = dict(architecture)
        if data_preprocessor is not None:
            architecture.setdefault('data_preprocessor', data_preprocessor)
        student = ROOT_MODELS.build(architecture)
        super().__init__(data_preprocessor=student.data_preprocessor, init_cfg=init_cfg)
        quantize_model(student.backbone, QConfig.from_dict(qconfig, 'model.qconfig'))
        self.student = student
        self.checkpoint = checkpoint
        self.progress = 0.0

    def init_weights(self) -> None:
        if self.checkpoint is None:
            self.student.init_weights()
            return
        try:
            load_float_checkpoint(self.checkpoint, self.student)
        except KeyError as e:
            raise KeyError(f'model.checkpoint: {e.args[0]}') from e

    def quantized_weights(self) -> list[tuple[Tensor, BaseQuantizer]]:
        """(weight, its quantizer) of every quantized linear and conv whose weight quantizer runs."""
        return [(m.weight, m.weight_quant) for m in self.student.modules()
                if isinstance(m, (QuantLinear, QuantConv2d)) and m.weight_quant is not None and m.weight_quant.enabled]

    def regularizer_weight(self) -> float:
        if self.regularizer is None:
            return 0.0
        return cosine_ramp(self.progress, self.regularizer['weight'], self.regularizer['start'])

    def forward(self, inputs: Tensor, data_samples: Optional[list] = None, mode: str = 'tensor'):
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        return self.student(inputs, data_samples, mode=mode)

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


for _registry in (MMPRETRAIN_MODELS, MMDET_MODELS, MODELS):
    _registry.register_module(module=VVTQ)
