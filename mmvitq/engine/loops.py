"""Post-training quantization at test time, usable from any config through `test_cfg`.

    test_cfg = dict(type='PTQTestLoop', num_images=512)       # calibrate on 512 training images, then test
    test_cfg = dict(type='RepQViTTestLoop', num_images=512)   # the same, with RepQ-ViT's post-LN reparameterisation

The model's quantizers observe `num_images` images of `calib_dataloader` (default: the config's
train_dataloader), freeze their ranges, the calibrated model is saved as `ptq_calibrated.pth` in the
work dir, then the usual test runs. Given a checkpoint whose quantizers are all calibrated already
(e.g. that `ptq_calibrated.pth`), the loop skips calibration and only tests.
"""
from typing import Optional, Union

import torch
from mmengine.logging import print_log
from mmengine.registry import LOOPS
from mmengine.runner import TestLoop
from torch.utils.data import DataLoader

from ..methods.repq import fold_channel_qparams, observe_post_norm_channels
from ..quantizers import calibration, quantizers_of


@LOOPS.register_module()
class PTQTestLoop(TestLoop):
    """Calibrate every quantizer on `num_images` training images, save the calibrated model, then test."""

    def __init__(self, runner, dataloader: Union[DataLoader, dict], evaluator, calib_dataloader: Optional[dict] = None,
                 num_images: int = 256, save_checkpoint: bool = True, fp16: bool = False):
        if isinstance(num_images, bool) or not isinstance(num_images, int) or num_images < 1:
            raise ValueError(f'PTQTestLoop: num_images must be an int >= 1, got {num_images!r}')
        calib = calib_dataloader if calib_dataloader is not None else runner._train_dataloader
        if calib is None:
            raise ValueError('PTQTestLoop: set calib_dataloader, or a train_dataloader in the config, to calibrate on')
        super().__init__(runner, dataloader, evaluator, fp16)
        self.calib_dataloader = runner.build_dataloader(calib, seed=runner.seed) if isinstance(calib, dict) else calib
        self.num_images, self.save_checkpoint = num_images, save_checkpoint

    def calibrate(self) -> int:
        """Observe `num_images` images and freeze every quantizer; returns the number of images seen."""
        model = self.runner.model
        model.eval()
        seen = self._observe(model)
        quantizers = quantizers_of(model)
        print_log(f'PTQ: calibrated {sum(bool(q.calibrated) for q in quantizers)}/{len(quantizers)} quantizers '
                  f'on {seen} images', logger='current')
        if self.save_checkpoint:
            self.runner.save_checkpoint(self.runner.work_dir, 'ptq_calibrated.pth', save_optimizer=False,
                                        save_param_scheduler=False)
        return seen

    def _observe(self, model: torch.nn.Module) -> int:
        """Run the calibration batches with every quantizer observing; returns the number of images."""
        seen = 0
        with torch.no_grad(), calibration(model):
            for batch in self.calib_dataloader:
                model.test_step(batch)
                seen += len(batch['inputs'])
                if seen >= self.num_images:
                    break
        return seen

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

    def _observe(self, model: torch.nn.Module) -> int:
        with observe_post_norm_channels(model) as stats:
            seen = super()._observe(model)
        for norm, (linears, observer) in stats.items():
            fold_channel_qparams(model, norm, linears, *observer.qparams())
        print_log(f'RepQ-ViT: folded per-channel scales of {len(stats)} post-LayerNorm inputs', logger='current')
        return seen
