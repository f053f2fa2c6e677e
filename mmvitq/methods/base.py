"""QuantAlgorithm: the one model base of the training methods (as mmrazor's BaseAlgorithm), and its registration.

    model = dict(type='QAT', architecture=_base_.model, qconfig=dict(w_bits=4, a_bits=4), checkpoint='float.pth')

The base builds the float `architecture` (any mmpretrain classifier or mmdet detector with a ViT/Swin backbone),
with its data preprocessor, keeps a frozen float copy as `teacher` when the method distils (`with_teacher`),
quantizes the backbone with `qconfig` and holds the result as `student`; loads the float `checkpoint` into both at
`init_weights`; dispatches `forward` ('loss' to the method's `loss`, with activations saved compactly if asked;
everything else to the student); and lists the quantized layers. A method subclasses it, overrides `loss` and adds
what is its own.
"""
import copy
import importlib
from contextlib import nullcontext
from typing import Optional

from mmengine.model import BaseModel
from mmengine.registry import MODELS as ROOT_MODELS
from torch import Tensor, nn

from .. import ops
from ..models import QConfig, quantize_model, quantized_layers
from ..models.checkpoint import load_float_checkpoint
from ..quantizers import BaseQuantizer, quantizers_of
from ..registry import MODELS
from ..utils import check_checkpoint_arg


def register_algorithm(cls: type) -> type:
    """Class decorator: register a method model in mmvitq's MODELS and in mmpretrain's and mmdet's (when they
    import), so configs of either library build it by its bare name."""
    MODELS.register_module(module=cls)
    for library in ('mmpretrain', 'mmdet'):
        try:
            registry = importlib.import_module(f'{library}.registry').MODELS
        except ImportError:
            continue
        registry.register_module(module=cls)
    return cls


class QuantAlgorithm(BaseModel):
    """A quantized student built from a float architecture (see the module docstring).

    Args:
        architecture: config of the float model (classifier or detector).
        qconfig: quantization of its backbone (see mmvitq.models.qconfig), checked as `model.qconfig`.
        checkpoint: float weights of `architecture` to start from (a local file or a URL); None: its own init,
            unless the method requires one (`checkpoint_required`).
        compact_activations: train with the quantized activations saved for backward as integer codes
            (`mmvitq.ops.compact_activations`): 2 bytes per element instead of 8, same forward values and
            input/weight gradients, LSQ scale gradients to within 1/250 per element. None (default): on
            when the inputs are on a GPU, where memory is the limit; on CPU it costs about 30% more time.
        data_preprocessor: the architecture's, if it has none of its own.
    """

    #: keep a frozen float copy of the architecture as `teacher` (distillation)
    with_teacher: bool = False
    #: the constructor argument (config key under `model.`) that names the float checkpoint
    checkpoint_arg: str = 'checkpoint'
    #: a float checkpoint must be given (the method starts from a trained model)
    checkpoint_required: bool = False

    def __init__(self, architecture: dict, qconfig: dict, checkpoint: Optional[str] = None,
                 compact_activations: Optional[bool] = None, data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        self._check_checkpoint(checkpoint)
        if compact_activations not in (None, True, False):
            raise ValueError(f'model.compact_activations must be None, True or False, got {compact_activations!r}')
        architecture = dict(architecture)
        if data_preprocessor is not None:
            architecture.setdefault('data_preprocessor', data_preprocessor)
        student = ROOT_MODELS.build(architecture)
        super().__init__(data_preprocessor=student.data_preprocessor, init_cfg=init_cfg)
        self.checkpoint, self.compact_activations = checkpoint, compact_activations
        if self.with_teacher:
            self.teacher = copy.deepcopy(student).requires_grad_(False).eval()
        quantize_model(student.backbone, QConfig.from_dict(qconfig, 'model.qconfig'))
        self.student = student

    def _check_checkpoint(self, checkpoint: Optional[str]) -> None:
        if checkpoint is not None or self.checkpoint_required:
            check_checkpoint_arg(f'model.{self.checkpoint_arg}', checkpoint)

    # -- state -------------------------------------------------------------------------------------------
    def float_models(self) -> list[nn.Module]:
        """The models the float checkpoint loads into: the student, and the teacher when there is one."""
        return [self.teacher, self.student] if self.with_teacher else [self.student]

    def init_weights(self) -> None:
        """Load the float checkpoint into the student (and teacher); without one, the architecture's own init."""
        if self.checkpoint is None:
            self.student.init_weights()
            return
        try:
            load_float_checkpoint(self.checkpoint, *self.float_models())
        except KeyError as e:
            raise KeyError(f'model.{self.checkpoint_arg}: {e.args[0]}') from e

    def _load_from_state_dict(self, state_dict: dict, prefix: str, *args, **kwargs) -> None:
        """A float checkpoint of `architecture` (keys without our prefixes) loads into the student (and teacher), so
        `tools/test.py METHOD_CONFIG FLOAT_CKPT` starts the method's test-time steps from the float model."""
        own = tuple(f'{name}.' for name, _ in self.named_children())
        parts = [name for name, module in self.named_children() if any(module is m for m in self.float_models())]
        for key in [k for k in state_dict if k.startswith(prefix) and not k[len(prefix):].startswith(own)]:
            value = state_dict.pop(key)
            for part in parts:
                state_dict[f'{prefix}{part}.{key[len(prefix):]}'] = value
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def train(self, mode: bool = True) -> 'QuantAlgorithm':
        super().train(mode)
        if self.with_teacher:
            self.teacher.eval()
        return self

    # -- quantized layers --------------------------------------------------------------------------------
    def quantized_layers(self, enabled: bool = False) -> dict[str, nn.Module]:
        """{path in the student: layer} of the linears and convs with a weight quantizer (`enabled`: running)."""
        return quantized_layers(self.student, enabled)

    def weight_quantizers(self) -> list[BaseQuantizer]:
        return [layer.weight_quant for layer in self.quantized_layers().values()]

    def activation_quantizers(self) -> list[BaseQuantizer]:
        weights = set(map(id, self.weight_quantizers()))
        return [q for q in quantizers_of(self.student) if id(q) not in weights]

    # -- forward -----------------------------------------------------------------------------------------
    def forward(self, inputs: Tensor, data_samples: Optional[list] = None, mode: str = 'tensor'):
        if mode != 'loss':
            return self.student(inputs, data_samples, mode=mode)
        compact = inputs.is_cuda if self.compact_activations is None else self.compact_activations
        with ops.compact_activations() if compact else nullcontext():
            return self.loss(inputs, data_samples)

    def loss(self, inputs: Tensor, data_samples: list) -> dict:
        """The method's training losses; the base trains the student on its own task losses."""
        return self.student.loss(inputs, data_samples)
