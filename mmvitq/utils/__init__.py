"""Small helpers shared by every layer: crash-safe files, safe checkpoint loading, measuring, RNG states."""
from .checkpoint import (RUNNER_GLOBALS, CheckpointError, check_checkpoint_arg, check_checkpoint_file, is_url,
                         load_checkpoint_file, portable_message_hub, runner_checkpoint_globals)
from .files import atomic_path, pid_alive, write_json, write_text
from .process import run_measured
from .random_state import get_random_state, preserved_random_state, set_random_state

__all__ = [
    'RUNNER_GLOBALS', 'CheckpointError', 'check_checkpoint_arg', 'check_checkpoint_file', 'is_url',
    'load_checkpoint_file', 'portable_message_hub',
    'runner_checkpoint_globals', 'atomic_path', 'pid_alive', 'write_json', 'write_text', 'run_measured',
    'get_random_state', 'set_random_state', 'preserved_random_state'
]
