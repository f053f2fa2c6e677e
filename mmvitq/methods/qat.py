"""QAT: plain quantization-aware training (LSQ, Esser et al., ICLR 2020): every quantizer and weight trained on the
task loss from a float checkpoint, the quantizers initialised from data by `QuantizerInitHook`.

    model = dict(type='QAT', architecture=_base_.model, checkpoint='float.pth', qconfig=_base_.qat_qconfig)
"""
from .base import QuantAlgorithm, register_algorithm


@register_algorithm
class QAT(QuantAlgorithm):
    """The base as it is: the quantized student trained on its own losses (the baseline every method is held to)."""
