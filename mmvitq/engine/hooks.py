"""RandomStateHook: checkpoints carry the random number generators' states, so a resumed run draws the same
dropout / drop-path masks as the run that was interrupted (mmengine re-seeds, but does not restore them)."""
from mmengine.hooks import Hook
from mmengine.registry import HOOKS

from ..utils import get_random_state, set_random_state


@HOOKS.register_module()
class RandomStateHook(Hook):
    """Save the torch (CPU and CUDA), numpy and Python RNG states in checkpoint['meta'] and restore them on load."""

    KEY = 'random_state'

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint.setdefault('meta', {})[self.KEY] = get_random_state()

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        state = checkpoint.get('meta', {}).get(self.KEY)
        if state is not None:
            set_random_state(state)
