"""Post-training calibration: let every quantizer of a model observe a few batches, then freeze its range."""
import warnings
from contextlib import contextmanager
from typing import Iterable, Iterator, Optional

from torch import nn

from .base import BaseQuantizer
from .observers import CalibrationError


def quantizers_of(model: nn.Module) -> list[BaseQuantizer]:
    """Every quantizer in `model`, in module order."""
    return [m for m in model.modules() if isinstance(m, BaseQuantizer)]


def quantizer_paths(model: nn.Module) -> dict[BaseQuantizer, str]:
    """{quantizer: its module path in `model`}."""
    return {m: path for path, m in model.named_modules() if isinstance(m, BaseQuantizer)}


def _listed(items: dict[str, object], limit: int = 5) -> str:
    shown = ', '.join(f'{path} ({what})' for path, what in list(items.items())[:limit])
    return shown + (f' and {len(items) - limit} more' if len(items) > limit else '')


@contextmanager
def calibration(model: nn.Module, quantizers: Optional[Iterable[BaseQuantizer]] = None) -> Iterator[nn.Module]:
    """Calibrate the quantizers of `model` (or only `quantizers`) on the batches run inside the context.

    Inside, every quantizer observes its inputs and returns them unchanged (the model runs in float);
    on exit, each quantizer that saw at least one batch freezes its scale and zero point and is marked
    calibrated. If the block raises, the statistics are discarded and nothing is frozen. With `quantizers`,
    the others run as they are. Non-finite values (NaN, +-inf) are left out of every range and reported in one
    warning; a quantizer whose batches held no finite value raises CalibrationError naming its path. Typical use::

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
        paths = quantizer_paths(model)
        ignored, failed = {}, {}
        for quantizer in quantizers:
            name = paths.get(quantizer, type(quantizer).__name__)
            try:
                count = quantizer.stop_observing(freeze=completed)
            except CalibrationError as e:
                failed[name] = e
                continue
            if count:
                ignored[name] = f'{count} values'
        if ignored:
            warnings.warn(f'calibration: non-finite inputs (NaN or inf) were left out of the ranges of '
                          f'{len(ignored)} quantizers: {_listed(ignored)}')
        if failed and completed:
            raise CalibrationError(f'calibration: {len(failed)} quantizers cannot be calibrated: {_listed(failed)}')


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
