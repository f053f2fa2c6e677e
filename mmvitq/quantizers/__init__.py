"""Fake quantizers (uniform, LSQ, log2) with their range observers and the calibration context."""
from ..registry import OBSERVERS
from .base import BaseQuantizer
from .calibration import calibration, disabled, quantizer_paths, quantizers_of, reset_calibration
from .log2 import Log2Quantizer
from .lsq import LSQQuantizer
from .observers import (CalibrationError, EMAObserver, MinMaxObserver, MSEObserver, Observer, PercentileObserver,
                        qparams_from_range)
from .uniform import UniformQuantizer

__all__ = [
    'BaseQuantizer', 'UniformQuantizer', 'LSQQuantizer', 'Log2Quantizer', 'calibration', 'disabled', 'quantizers_of',
    'quantizer_paths', 'reset_calibration', 'CalibrationError', 'Observer', 'MinMaxObserver', 'EMAObserver',
    'PercentileObserver', 'MSEObserver', 'OBSERVERS',
    'qparams_from_range'
]
