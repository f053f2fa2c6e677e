"""The quantization methods, one package each, on one model base (`QuantAlgorithm`) where they train a model."""
from .base import QuantAlgorithm, register_algorithm
from .qat import QAT

__all__ = ['QuantAlgorithm', 'register_algorithm', 'QAT']
