"""Hooks of any quantization-aware training (QAT, VVTQ):

    custom_hooks = [dict(type='QuantizerInitHook', num_images=512),   # quantizer ranges from data, before step 1
                    dict(type='ProgressHook'),                        # model.progress for schedules inside losses
                    dict(type='RandomStateHook')]                     # RNG states in checkpoints, for exact resume
"""
from typing import Optional

from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.registry import HOOKS

from ..quantizers import quantizers_of
from ..quantizers.base import check_int
from ..utils import get_random_state, set_random_state
from .calib import calibration_loader, observe, preprocessed
from .dist import broadcast_state, unwrap


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


@HOOKS.register_module()
class QuantizerInitHook(Hook):
    """Before the first training step of a fresh run, calibrate every quantizer on the first `num_images` training
    images (each by its own init observer, e.g. MSE; the same images on every rank), then give every rank rank 0's
    values. Skipped on resume."""

    priority = 'HIGH'

    def __init__(self, num_images: int = 512) -> None:
        check_int('custom_hooks: QuantizerInitHook.num_images', num_images, 1)
        self.num_images = num_images

    def before_train(self, runner) -> None:
        if runner.iter > 0:
            return
        model = unwrap(runner.model)
        loader = calibration_loader(runner, runner.cfg.train_dataloader)
        seen = observe(model, preprocessed(model, loader, self.num_images))
        model.train()
        broadcast_state(model)
        quantizers = quantizers_of(model)
        print_log(f'QuantizerInitHook: {sum(bool(q.calibrated) for q in quantizers)}/{len(quantizers)} quantizers '
                  f'initialised on {seen} images', logger='current')


@HOOKS.register_module()
class ProgressHook(Hook):
    """Before every training step, set `model.progress` to the fraction of training done (iter / max_iters)."""

    def before_train_iter(self, runner, batch_idx: int, data_batch: Optional[dict] = None) -> None:
        model = unwrap(runner.model)
        if not hasattr(model, 'progress'):
            raise AttributeError(f'ProgressHook: {type(model).__name__} has no `progress` attribute to set')
        model.progress = runner.iter / runner.max_iters
