"""mmengine pieces shared by the methods: the Runner, loops and hooks."""
from .deploy import OnnxRuntimeHook
from .dist import setup_cpu_distributed
from .gplq import GPLQTestLoop, GPLQTrainLoop
from .hooks import ProgressHook, QuantizerInitHook, RandomStateHook
from .lampq import LampQTestLoop
from .loops import PTQTestLoop, RepQViTTestLoop
from .optim import BackboneLayerDecayOptimWrapperConstructor
from .runner import Runner
from .vvtq import OscillationTrackerHook

__all__ = [
    'Runner', 'setup_cpu_distributed', 'PTQTestLoop', 'RepQViTTestLoop', 'GPLQTrainLoop', 'GPLQTestLoop',
    'LampQTestLoop', 'RandomStateHook', 'OnnxRuntimeHook', 'QuantizerInitHook', 'ProgressHook',
    'OscillationTrackerHook', 'BackboneLayerDecayOptimWrapperConstructor'
]
