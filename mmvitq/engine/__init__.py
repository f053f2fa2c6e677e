"""mmengine pieces shared by the methods: checkpoint loading, loops and hooks."""
from .checkpoint import load_from_local
from .dist import setup_cpu_distributed
from .gplq import GPLQTestLoop, GPLQTrainLoop
from .hooks import RandomStateHook
from .lampq import LampQTestLoop
from .loops import PTQTestLoop, RepQViTTestLoop
from .vvtq import OscillationTrackerHook, ProgressHook, QuantizerInitHook

__all__ = [
    'load_from_local', 'setup_cpu_distributed', 'PTQTestLoop', 'RepQViTTestLoop', 'GPLQTrainLoop', 'GPLQTestLoop',
    'LampQTestLoop', 'RandomStateHook', 'QuantizerInitHook', 'ProgressHook', 'OscillationTrackerHook'
]
