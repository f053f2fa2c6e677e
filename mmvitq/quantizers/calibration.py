"""Post-training calibration: let every quantizer of a model observe a few batches, then freeze its range."""
from contextlib import contextmanager
from typing import Iterable, Iterator, Optional

from torch import nn

from .base import BaseQuantizer


def quantizers_of(model: nn.Module) -> list[BaseQuantizer]:
    """Every quantizer in `model`, in module order."""
    return [m for m in model.modules() if isinstance(m, BaseQuantizer)]


@contextmanager
def calibration(model: nn.Module, quantizers: Optional[Iterable[BaseQuantizer]] = None) -> Iterator[nn.Module]:
    """Calibrate the quantizers of `model` (or only `quantizers`) on the batches run inside the context.

    Inside, every quantizer observes its inputs and returns them unchanged (the model runs in float);
    on exit, each quantizer that saw at least one batch freezes its scale and zero point and is marked
    calibrated. If the block raises, the statistics are discarded and nothing is frozen. With `quantizers`,
    the others run as they are. Typical use::

        with torch.no_grad(), calibration(model):
            for batch in itertools.islice(loader, num_batches):
                model(batch)
    """
    quantizers = quantizers_of(model) if quantizers is None else list(quantizers)
    for quantizer in quantizers:
        quantizer.start_observing()
    completed = False
    try:
        yield model
        completed = True
    finally:
        for quantizer in quantizers:
            quantizer.stop_observing(freeze=completed)


def reset_calibration(model: nn.Module) -> None:
    """Mark every quantizer of `model` uncalibrated, so the next calibration (or first batch) re-derives it."""
    for quantizer in quantizers_of(model):
        quantizer.reset()


@contextmanager
def disabled(quantizers: Iterable[BaseQuantizer]) -> Iterator[None]:
    """Inside, `quantizers` pass their inputs through unchanged (float); each one's `enabled` is restored after."""
    quantizers = list(quantizers)
    enabled = [q.enabled for q in quantizers]
    for quantizer in quantizers:
        quantizer.enabled = False
    try:
        yield
    finally:
        for quantizer, flag in zip(quantizers, enabled):
            quantizer.enabled = flag
