"""mmvitq's Runner: mmengine's Runner with checkpoints that are safe to load and never half-written.

- Every load (`load_from`, `--resume`) reads with weights_only=True; a Runner checkpoint's training state is
  accepted through a short allow-list of data-only classes (mmvitq.utils.checkpoint). A file that is not a
  complete checkpoint, or that needs code to unpickle, fails naming it. `unsafe_load=True` in the config
  (tools: `--unsafe-load`) opts into full unpickling, with a warning naming the file.
- Every checkpoint is written to a temporary file and renamed, and its message hub needs no `getattr`.
- A packed checkpoint (tools/publish_model.py --pack) is unpacked as it loads.

tools/train.py and tools/test.py use it; for other tools (e.g. mmpretrain's), `runner_type='mmvitq.Runner'`.
"""
import os.path as osp
from typing import Callable, Optional, Union

from mmengine.dist import master_only
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.runner import Runner as MMEngineRunner
from mmengine.runner.checkpoint import _load_checkpoint_to_model

from ..deploy.pack import unpack_checkpoint
from ..registry import RUNNERS
from ..utils import atomic_path, load_checkpoint_file, portable_message_hub


class PortableCheckpointHook(Hook):
    """Stores the message hub of every checkpoint in a form that unpickles without `getattr`."""

    priority = 'LOWEST'

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        if 'message_hub' in checkpoint:
            checkpoint['message_hub'] = portable_message_hub(checkpoint['message_hub'])


@RUNNERS.register_module()
class Runner(MMEngineRunner):
    """mmengine's Runner with safe checkpoint loading and atomic checkpoint files (see the module docstring)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        unsafe = self.cfg.get('unsafe_load', False)
        if not isinstance(unsafe, bool):
            raise ValueError(f'unsafe_load must be True or False, got {unsafe!r}')
        self.unsafe_load = unsafe
        self.register_hook(PortableCheckpointHook())

    def load_checkpoint(self, filename: str, map_location: Union[str, Callable] = 'cpu', strict: bool = False,
                        revise_keys: list = [(r'^module.', '')]) -> dict:  # noqa: B006  (mmengine's signature)
        checkpoint = unpack_checkpoint(load_checkpoint_file(filename, map_location, unsafe=self.unsafe_load))
        self.call_hook('after_load_checkpoint', checkpoint=checkpoint)
        model = self.model.module if is_model_wrapper(self.model) else self.model
        checkpoint = _load_checkpoint_to_model(model, checkpoint, strict, revise_keys=revise_keys)
        self._has_loaded = True
        self.logger.info(f'Load checkpoint from {filename}')
        return checkpoint

    def save_checkpoint(self, out_dir: str, filename: str, *args, **kwargs) -> None:
        # mmengine reads the epoch and the training set's metainfo while saving, which builds the training loop
        # and its loader on first use (e.g. in a test run). Datasets that synchronise the ranks while loading
        # (mmpretrain's MNIST family) then hung when only rank 0 saved, so every rank builds them first.
        if self._train_loop is not None:
            _ = self.train_loop
        self._save_checkpoint_file(out_dir, filename, *args, **kwargs)

    @master_only
    def _save_checkpoint_file(self, out_dir: str, filename: str, *args, backend_args: Optional[dict] = None,
                              **kwargs) -> None:
        if '://' in out_dir or backend_args is not None or kwargs.get('file_client_args') is not None:
            return super().save_checkpoint(out_dir, filename, *args, backend_args=backend_args, **kwargs)
        with atomic_path(osp.join(out_dir, filename)) as tmp:
            super().save_checkpoint(osp.dirname(tmp), osp.basename(tmp), *args, **kwargs)
