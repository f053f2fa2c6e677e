"""GPLQ: the float teacher, the student with quantized backbone, the PCA feature loss and the block compensations.

    model = dict(type='GPLQ', architecture=_base_.model, teacher_checkpoint='float.pth',
                 qconfig=dict(w_bits=4, a_bits=4, ...), feature_loss_weight=1.0, pca_variance=0.6)

`architecture` is any mmpretrain classifier or mmdet detector config with a ViT/Swin backbone; the
student is built from it and its backbone quantized with `qconfig`; the teacher is a frozen float
copy. Both start from `teacher_checkpoint` (loaded by `init_weights`, i.e. at the start of training).
Weight quantizers stay disabled until they are calibrated (stage 2, or the 'joint' QAT ablation),
so stage 1 trains float weights under quantized activations. The stages themselves run in
`GPLQTrainLoop` / `GPLQTestLoop` (mmvitq.engine.gplq).
"""
from contextlib import contextmanager
from typing import Iterator, Optional

import torch
from torch import Tensor, nn

from ...models.rules import transformer_blocks
from ...quantizers import disabled
from ..base import QuantAlgorithm, register_algorithm
from .compensation import LinearCompensation
from .pca import PCAProjector


def _pooled(features: 'Tensor | tuple') -> Tensor:
    """The last feature of an extract_feat output as [N, D]: [N, C, H, W] maps and [N, L, C] tokens are averaged."""
    x = features[-1] if isinstance(features, (tuple, list)) else features
    if x.dim() == 4:
        return x.mean(dim=(2, 3))
    return x.mean(dim=1) if x.dim() == 3 else x


def _feature_module(model: nn.Module) -> nn.Module:
    """The module whose output `extract_feat` returns: the neck if there is one, else the backbone."""
    return model.neck if getattr(model, 'with_neck', False) else model.backbone


@register_algorithm
class GPLQ(QuantAlgorithm):
    """Activation-first, weights-later quantization: a distillation wrapper around a quantized student.

    Args:
        architecture: config of the float model (classifier or detector).
        teacher_checkpoint: float weights of `architecture` (a local file or a URL), the teacher and the
            student's starting point.
        qconfig: quantization of the student's backbone (see mmvitq.models.qconfig).
        feature_loss_weight: lambda of the PCA feature-mimicking loss; 0 trains on the task loss only.
        pca_variance: fraction of the teacher-feature variance the PCA basis keeps.
        compensation: give every transformer block a QwT linear compensation, fitted in stage 2.
        compact_activations: see QuantAlgorithm.
    """

    with_teacher = True
    checkpoint_arg = 'teacher_checkpoint'
    checkpoint_required = True

    def __init__(self, architecture: dict, teacher_checkpoint: str, qconfig: dict, feature_loss_weight: float = 1.0,
                 pca_variance: float = 0.6, compensation: bool = True, compact_activations: Optional[bool] = None,
                 data_preprocessor: Optional[dict] = None, init_cfg: Optional[dict] = None) -> None:
        if isinstance(feature_loss_weight, bool) or not isinstance(feature_loss_weight, (int, float)) \
                or feature_loss_weight < 0:
            raise ValueError(f'model.feature_loss_weight must be a number >= 0, got {feature_loss_weight!r}')
        if isinstance(pca_variance, bool) or not isinstance(pca_variance, (int, float)) or not 0 < pca_variance <= 1:
            raise ValueError(f'model.pca_variance must be a number in (0, 1], got {pca_variance!r}')
        super().__init__(architecture, qconfig, teacher_checkpoint, compact_activations, data_preprocessor, init_cfg)
        self.feature_loss_weight, self.pca_variance = float(feature_loss_weight), float(pca_variance)
        self.pca = PCAProjector()
        blocks = transformer_blocks(self.student.backbone) if compensation else {}
        self.compensations = nn.ModuleDict({path.replace('.', '_'): LinearCompensation(width)
                                            for path, width in blocks.items()})
        for path, comp in zip(blocks, self.compensations.values()):
            self.student.backbone.get_submodule(path).register_forward_hook(comp.add_to_output)
        self.sync_weight_quant()
        self.register_load_state_dict_post_hook(lambda module, keys: module.sync_weight_quant())

    # -- state -------------------------------------------------------------------------------------------
    def sync_weight_quant(self) -> None:
        """Weight quantizers run only once calibrated (stage 1 trains float weights)."""
        for quantizer in self.weight_quantizers():
            quantizer.enabled = bool(quantizer.calibrated)

    @contextmanager
    def float_weights(self, module: nn.Module) -> Iterator[None]:
        """Inside, the weight quantizers within `module` are bypassed."""
        with disabled(q for q in self.weight_quantizers() if any(q is m for m in module.modules())):
            yield

    def compensated_blocks(self) -> list[tuple[nn.Module, LinearCompensation]]:
        """(block, its compensation) in forward order."""
        blocks = transformer_blocks(self.student.backbone)
        return [(self.student.backbone.get_submodule(path), comp)
                for path, comp in zip(blocks, self.compensations.values())]

    # -- PCA ---------------------------------------------------------------------------------------------
    @torch.no_grad()
    def teacher_features(self, inputs: Tensor) -> Tensor:
        return _pooled(self.teacher.extract_feat(inputs))

    def fit_pca(self, features: Tensor) -> int:
        """Fit the PCA basis on teacher features [N, D]; returns its number of components."""
        return self.pca.fit(features, self.pca_variance)

    # -- forward -----------------------------------------------------------------------------------------
    def loss(self, inputs: Tensor, data_samples: list) -> dict:
        """The student's task losses plus, with a feature loss weight, the PCA feature-mimicking MSE."""
        if not self.feature_loss_weight:
            return self.student.loss(inputs, data_samples)
        if not self.pca.fitted:
            raise RuntimeError('GPLQ: the PCA basis is not fitted; train with GPLQTrainLoop, which fits it first')
        captured = []
        handle = _feature_module(self.student).register_forward_hook(lambda m, a, out: captured.append(out))
        try:
            losses = self.student.loss(inputs, data_samples)
        finally:
            handle.remove()
        losses['loss_mimic'] = self.feature_loss_weight * self.pca.mimic_loss(
            _pooled(captured[0]), self.teacher_features(inputs))
        return losses

