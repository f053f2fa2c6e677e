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
import copy
import os.path as osp
from contextlib import contextmanager, nullcontext
from typing import Iterator, Optional

import torch
from mmdet.registry import MODELS as MMDET_MODELS
from mmengine.model import BaseModel
from mmengine.registry import MODELS as ROOT_MODELS
from mmpretrain.registry import MODELS as MMPRETRAIN_MODELS
from torch import Tensor, nn

from ... import ops
from ...models import QConfig, quantize_model
from ...models.checkpoint import load_float_checkpoint
from ...models.modules import QuantConv2d, QuantLinear
from ...models.rules import transformer_blocks
from ...quantizers import BaseQuantizer, disabled, quantizers_of
from ...registry import MODELS
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


def _is_url(path: str) -> bool:
    return path.startswith(('http://', 'https://'))


class GPLQ(BaseModel):
    """Activation-first, weights-later quantization: a distillation wrapper around a quantized student.

    Args:
        architecture: config of the float model (classifier or detector).
        teacher_checkpoint: float weights of `architecture` (a local file or a URL), the teacher and the
            student's starting point.
        qconfig: quantization of the student's backbone (see mmvitq.models.qconfig).
        feature_loss_weight: lambda of the PCA feature-mimicking loss; 0 trains on the task loss only.
        pca_variance: fraction of the teacher-feature variance the PCA basis keeps.
        compensation: give every transformer block a QwT linear compensation, fitted in stage 2.
        compact_activations: train with the quantized activations saved for backward as integer codes
            (`mmvitq.ops.compact_activations`): 2 bytes per element instead of 8, same forward values and
            input/weight gradients, LSQ scale gradients to within 1/250 per element. None (default): on
            when the inputs are on a GPU, where memory is the limit; on CPU it costs about 30% more time.
    """

    def __init__(self, architecture: dict, teacher_checkpoint: str, qconfig: dict, feature_loss_weight: float = 1.0,
                 pca_variance: float = 0.6, compensation: bool = True, compact_activations: Optional[bool] = None,
                 data_preprocessor: Optional[dict] = None, init_cfg: Optional[dict] = None) -> None:
        if not isinstance(teacher_checkpoint, str) or not teacher_checkpoint:
            raise ValueError(f'model.teacher_checkpoint must be a checkpoint path or URL, got {teacher_checkpoint!r}')
        if not _is_url(teacher_checkpoint) and not osp.isfile(teacher_checkpoint):
            raise FileNotFoundError(f'model.teacher_checkpoint: no such file {teacher_checkpoint!r} (train the '
                                    'float model first, or point it at its checkpoint)')
        if isinstance(feature_loss_weight, bool) or not isinstance(feature_loss_weight, (int, float)) \
                or feature_loss_weight < 0:
            raise ValueError(f'model.feature_loss_weight must be a number >= 0, got {feature_loss_weight!r}')
        if compact_activations not in (None, True, False):
            raise ValueError(f'model.compact_activations must be None, True or False, got {compact_activations!r}')
        if isinstance(pca_variance, bool) or not isinstance(pca_variance, (int, float)) or not 0 < pca_variance <= 1:
            raise ValueError(f'model.pca_variance must be a number in (0, 1], got {pca_variance!r}')
        architecture = dict(architecture)
        if data_preprocessor is not None:
            architecture.setdefault('data_preprocessor', data_preprocessor)
        student = ROOT_MODELS.build(architecture)
        super().__init__(data_preprocessor=student.data_preprocessor, init_cfg=init_cfg)
        self.teacher_checkpoint = teacher_checkpoint
        self.feature_loss_weight, self.pca_variance = float(feature_loss_weight), float(pca_variance)
        self.compact_activations = compact_activations
        self.teacher = copy.deepcopy(student).requires_grad_(False).eval()
        quantize_model(student.backbone, QConfig.from_dict(qconfig, 'model.qconfig'))
        self.student = student
        self.pca = PCAProjector()
        blocks = transformer_blocks(student.backbone) if compensation else {}
        self.compensations = nn.ModuleDict({path.replace('.', '_'): LinearCompensation(width)
                                            for path, width in blocks.items()})
        for path, comp in zip(blocks, self.compensations.values()):
            student.backbone.get_submodule(path).register_forward_hook(comp.add_to_output)
        self.sync_weight_quant()
        self.register_load_state_dict_post_hook(lambda module, keys: module.sync_weight_quant())

    # -- state -------------------------------------------------------------------------------------------
    def init_weights(self) -> None:
        """Load the float checkpoint into the teacher and the student (nothing is randomly initialised)."""
        try:
            load_float_checkpoint(self.teacher_checkpoint, self.teacher, self.student)
        except KeyError as e:
            raise KeyError(f'model.teacher_checkpoint: {e.args[0]}') from e

    def _load_from_state_dict(self, state_dict: dict, prefix: str, *args, **kwargs) -> None:
        """A float checkpoint of `architecture` (keys without our prefixes) loads into the student and the teacher,
        so `tools/test.py GPLQ_CONFIG FLOAT_CKPT` runs stage 2 alone: PTQ with QwT from the float model."""
        own = tuple(f'{name}.' for name, _ in self.named_children())
        for key in [k for k in state_dict if k.startswith(prefix) and not k[len(prefix):].startswith(own)]:
            value = state_dict.pop(key)
            for part in ('student.', 'teacher.'):
                state_dict[prefix + part + key[len(prefix):]] = value
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def weight_quantized_layers(self) -> list[nn.Module]:
        """The student's quantized linears and convs that have a weight quantizer."""
        return [m for m in self.student.modules()
                if isinstance(m, (QuantLinear, QuantConv2d)) and m.weight_quant is not None]

    def weight_quantizers(self) -> list[BaseQuantizer]:
        return [m.weight_quant for m in self.weight_quantized_layers()]

    def activation_quantizers(self) -> list[BaseQuantizer]:
        weights = set(map(id, self.weight_quantizers()))
        return [q for q in quantizers_of(self.student) if id(q) not in weights]

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

    def train(self, mode: bool = True) -> 'GPLQ':
        super().train(mode)
        self.teacher.eval()
        return self

    # -- PCA ---------------------------------------------------------------------------------------------
    @torch.no_grad()
    def teacher_features(self, inputs: Tensor) -> Tensor:
        return _pooled(self.teacher.extract_feat(inputs))

    def fit_pca(self, features: Tensor) -> int:
        """Fit the PCA basis on teacher features [N, D]; returns its number of components."""
        return self.pca.fit(features, self.pca_variance)

    # -- forward -----------------------------------------------------------------------------------------
    def forward(self, inputs: Tensor, data_samples: Optional[list] = None, mode: str = 'tensor'):
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        return self.student(inputs, data_samples, mode=mode)

    def loss(self, inputs: Tensor, data_samples: list) -> dict:
        """The student's task losses plus, with a feature loss weight, the PCA feature-mimicking MSE."""
        compact = inputs.is_cuda if self.compact_activations is None else self.compact_activations
        with ops.compact_activations() if compact else nullcontext():
            return self._loss(inputs, data_samples)

    def _loss(self, inputs: Tensor, data_samples: list) -> dict:
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


for _registry in (MMPRETRAIN_MODELS, MMDET_MODELS, MODELS):
    _registry.register_module(module=GPLQ)
