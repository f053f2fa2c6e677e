"""Post-training quantization at test time, usable from any config through `test_cfg`.

    test_cfg = dict(type='PTQTestLoop', num_images=512)       # calibrate on 512 training images, then test
    test_cfg = dict(type='RepQViTTestLoop', num_images=512)   # the same, with RepQ-ViT's post-LN reparameterisation

The model's quantizers observe the first `num_images` images of `calib_dataloader` (default: the config's
train_dataloader; the same images on every rank under DDP, and rank 0's result is given to all), freeze their
ranges, the calibrated model is saved in the work dir as `<method>_<bits>.pth` (e.g. `ptq_w4a4.pth`,
`repq_w4a4.pth`), then the usual test runs. Given a checkpoint whose quantizers are all calibrated already
(e.g. that file), the loop skips calibration and only tests.
"""
from typing import Optional, Union

import torch
from mmengine.logging import print_log
from mmengine.registry import LOOPS
from mmengine.runner import TestLoop
from torch.utils.data import DataLoader

from ..methods.repq import fold_channel_qparams, observe_post_norm_channels
from ..models import bits_tag
from ..quantizers import quantizers_of
from ..quantizers.base import check_int
from .calib import calibration_loader, observe, preprocessed
from .dist import broadcast_state, unwrap


@LOOPS.register_module()
class PTQTestLoop(TestLoop):
    """Calibrate every quantizer on `num_images` training images, save the calibrated model, then test."""

    method = 'ptq'

    def __init__(self, runner, dataloader: Union[DataLoader, dict], evaluator, calib_dataloader: Optional[dict] = None,
                 num_images: int = 256, save_checkpoint: bool = True, fp16: bool = False):
        check_int('test_cfg.num_images', num_images, 1)
        calib = calib_dataloader if calib_dataloader is not None else runner._train_dataloader
        if calib is None:
            raise ValueError('test_cfg.calib_dataloader: set one, or a train_dataloader in the config, to calibrate on')
        super().__init__(runner, dataloader, evaluator, fp16)
        self.calib_dataloader = calibration_loader(runner, calib)
        self.num_images, self.save_checkpoint = num_images, save_checkpoint

    @property
    def checkpoint_name(self) -> str:
        """The saved model's file name: method and widths, so runs at other settings keep their own."""
        return f'{self.method}_{bits_tag(unwrap(self.runner.model))}.pth'

    def calibrate(self) -> int:
        """Observe `num_images` images and freeze every quantizer; returns the number of images seen."""
        model = unwrap(self.runner.model)
        seen = self._observe(model)
        broadcast_state(model)
        quantizers = quantizers_of(model)
        print_log(f'PTQ: calibrated {sum(bool(q.calibrated) for q in quantizers)}/{len(quantizers)} quantizers '
                  f'on {seen} images', logger='current')
        if self.save_checkpoint:
            self.runner.save_checkpoint(self.runner.work_dir, self.checkpoint_name, save_optimizer=False,
                                        save_param_scheduler=False)
            print_log(f'PTQ: calibrated model saved as {self.checkpoint_name} in {self.runner.work_dir}',
                      logger='current')
        return seen

    def _observe(self, model: torch.nn.Module) -> int:
        """Run the calibration batches with every quantizer observing; returns the number of images."""
        return observe(model, preprocessed(model, self.calib_dataloader, self.num_images))

    def run(self) -> dict:
        quantizers = quantizers_of(self.runner.model)
        if quantizers and all(q.calibrated for q in quantizers):
            print_log('PTQ: every quantizer of the loaded checkpoint is calibrated; testing it as it is',
                      logger='current')
        else:
            self.calibrate()
        return super().run()


@LOOPS.register_module()
class RepQViTTestLoop(PTQTestLoop):
    """PTQTestLoop plus RepQ-ViT's reparameterisation: post-LayerNorm inputs are calibrated per channel and
    folded into the LayerNorm and the next linear, so they run per tensor (see mmvitq.methods.repq).

    Pair it with a log-sqrt2 quantizer after the softmax (`per_point=dict(softmax=dict(type='Log2Quantizer',
    base='sqrt2'))`), as RepQ-ViT does.
    """

    method = 'repq'

    def _observe(self, model: torch.nn.Module) -> int:
        with observe_post_norm_channels(model) as stats:
            seen = super()._observe(model)
        for norm, (linears, observer) in stats.items():
            fold_channel_qparams(model, norm, linears, *observer.qparams())
        print_log(f'RepQ-ViT: folded per-channel scales of {len(stats)} post-LayerNorm inputs', logger='current')
        return seen
