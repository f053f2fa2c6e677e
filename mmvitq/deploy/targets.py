"""What is exported from an mmengine model, and how onnxruntime takes its place at test time.

- A classifier (mmpretrain ImageClassifier; a method's student) exports whole: preprocessed images -> logits.
- A detector (mmdet) exports its quantized feature extractor: images -> backbone (+ neck) feature maps; the
  heads and post-processing stay in PyTorch.
`onnxruntime_in_place` swaps the exported part for an onnxruntime session, so the usual test step and metric
run on it unchanged.
"""
from contextlib import contextmanager
from typing import Iterator, Optional

from torch import Tensor, nn

from .runtime import OrtModule


def deploy_target(model: nn.Module) -> nn.Module:
    """The model that runs at test time: a method's quantized student (GPLQ, VVTQ), or the model itself."""
    return getattr(model, 'student', model)


def is_detector(model: nn.Module) -> bool:
    from mmdet.models.detectors import BaseDetector
    return isinstance(model, BaseDetector)


class ClassifierLogits(nn.Module):
    """images -> logits of an mmpretrain classifier."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, inputs: Tensor) -> Tensor:
        return self.model(inputs, mode='tensor')


class DetectorFeatures(nn.Module):
    """images -> the multi-scale features of an mmdet detector (backbone, then neck if any)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, inputs: Tensor) -> tuple[Tensor, ...]:
        return tuple(self.model.extract_feat(inputs))


def export_module(target: nn.Module) -> tuple[nn.Module, Optional[list[str]]]:
    """(the module to export from `target`, its output names: None for a detector's numbered feature maps)."""
    if is_detector(target):
        return DetectorFeatures(target), None
    return ClassifierLogits(target), ['logits']


class _LogitsHead(nn.Module):
    """Stands in for a classifier head when the exported graph already ends in logits."""

    def __init__(self, head: nn.Module) -> None:
        super().__init__()
        self.head = head

    def forward(self, feats: tuple) -> Tensor:
        return feats[-1]

    def predict(self, feats: tuple, data_samples=None) -> list:
        return self.head._get_predictions(feats[-1], data_samples)


@contextmanager
def onnxruntime_in_place(target: nn.Module, path: str, optimize: bool = True) -> Iterator[OrtModule]:
    """Inside, `target` (see `deploy_target`) runs its exported part, the graph at `path`, in onnxruntime."""
    runtime = OrtModule(path, optimize)
    saved = {name: getattr(target, name) for name in ('backbone', 'neck', 'head') if hasattr(target, name)}
    target.backbone = runtime
    if 'neck' in saved:
        target.neck = None
    if not is_detector(target):
        target.head = _LogitsHead(saved['head'])
    try:
        yield runtime
    finally:
        for name, module in saved.items():
            setattr(target, name, module)
