"""Load a float checkpoint into float or quantized copies of its model (the quantizers' own state stays as is)."""
from torch import nn

from ..quantizers import BaseQuantizer
from ..utils import load_checkpoint_file


def load_float_checkpoint(path: str, *modules: nn.Module) -> None:
    """Load the float weights at `path` (a local file or URL, read with weights_only=True) into each of `modules`.

    Every weight of a module must be in the checkpoint, except the state of its quantizers; a checkpoint
    saved from a wrapper (keys prefixed 'module.') loads too. Raises KeyError naming missing weights.
    """
    state = load_checkpoint_file(path, map_location='cpu')
    state = {k.removeprefix('module.'): v for k, v in state.get('state_dict', state).items()}
    for module in modules:
        quantizers = tuple(f'{name}.' for name, m in module.named_modules() if isinstance(m, BaseQuantizer))
        missing = [k for k in module.load_state_dict(state, strict=False).missing_keys if not k.startswith(quantizers)]
        if missing:
            raise KeyError(f'checkpoint {path!r} lacks {len(missing)} weights of the model, e.g. {missing[:3]}: '
                           'is it a checkpoint of this model?')
