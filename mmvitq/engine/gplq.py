"""GPLQ's two stages as mmengine loops, chosen in a config (model: `type='GPLQ'`, see mmvitq.methods.gplq):

    train_cfg = dict(type='GPLQTrainLoop', stages=('activation', 'weight'), max_epochs=1, calib_images=512)
    test_cfg = dict(type='GPLQTestLoop', calib_images=512)

`GPLQTrainLoop` runs the stages in order:
- 'activation' (stage 1): initialise the activation quantizers and fit the PCA basis of the feature
  loss on `calib_images` training images, then train `max_epochs` epochs with float weights
  (iteration-based, so a run killed mid-epoch resumes mid-epoch);
- 'weight' (stage 2): weight PTQ (each weight quantizer calibrated on its weight), then the QwT
  block compensations fitted on `calib_images` images; saves `gplq_<bits>.pth` (e.g. `gplq_w4a4.pth`) and
  validates;
- 'joint' (alone; GPLQ's QAT ablation, with its feature loss): weights and activations quantized and trained together.
`GPLQTestLoop` runs stage 2 on a checkpoint that lacks it (a stage-1 checkpoint, or the float one: PTQ
with QwT), then tests. Under DDP every calibration reads the same first `calib_images` training images on
every rank and rank 0's result is given to all, so N processes calibrate exactly as one.
"""
import os.path as osp
from typing import Optional, Sequence, Union

import torch
from mmengine import dist
from mmengine.logging import print_log
from mmengine.registry import LOOPS
from mmengine.runner import IterBasedTrainLoop, TestLoop
from torch import Tensor
from torch.utils.data import DataLoader

from ..methods.gplq import GPLQ
from ..methods.gplq.stages import calibrate_activations, calibrate_weights, fit_compensations, fit_feature_pca
from ..models import bits_tag
from ..quantizers.base import check_int
from ..utils import write_text
from .calib import calibration_loader, preprocessed
from .dist import broadcast_state, unwrap

STAGES = ('activation', 'weight', 'joint')
STAGE_ORDERS = (('activation', 'weight'), ('activation', ), ('weight', ), ('joint', ))


def _gplq(runner) -> GPLQ:
    model = unwrap(runner.model)
    if not isinstance(model, GPLQ):
        raise TypeError(f"GPLQ loops need model=dict(type='GPLQ', ...), got {type(model).__name__}")
    return model


def calib_inputs(model: GPLQ, loader: DataLoader, num_images: int) -> list[Tensor]:
    """The preprocessed inputs of the first `num_images` images of `loader`."""
    return [data['inputs'] for data in preprocessed(model, loader, num_images)]


def save_quantized(runner, model: GPLQ, last: bool = False) -> str:
    """Save the stage-2 model as `gplq_<bits>.pth` (with `last`, also the run's `last_checkpoint`); returns its path."""
    name = f'gplq_{bits_tag(model.student)}.pth'
    runner.save_checkpoint(runner.work_dir, name, save_optimizer=False, save_param_scheduler=False)
    path = osp.join(runner.work_dir, name)
    if last and dist.is_main_process():
        write_text(osp.join(runner.work_dir, 'last_checkpoint'), path)
    print_log(f'GPLQ: quantized model saved as {path}', logger='current')
    return path


class _Stage2:
    """Stage 2 on the calibration images of a loader: weight PTQ, then the QwT compensations."""

    def run_stage2(self, model: GPLQ, loader: DataLoader, num_images: int) -> None:
        batches = calib_inputs(model, loader, num_images)
        if not all(q.calibrated for q in model.activation_quantizers()):  # PTQ from float: no stage 1
            calibrate_activations(model, batches)
        count = calibrate_weights(model)
        scores = fit_compensations(model, batches)
        broadcast_state(model)
        print_log(f'GPLQ stage 2: {count} weight quantizers calibrated; QwT compensation of {len(scores)} blocks '
                  f'on {sum(map(len, batches))} images, R^2 ' + ' '.join(f'{r:.3f}' for r in scores),
                  logger='current')


@LOOPS.register_module()
class GPLQTrainLoop(IterBasedTrainLoop, _Stage2):
    """GPLQ's stages in one `tools/train.py` run (see the module docstring).

    Args:
        stages: one of ('activation', 'weight'), ('activation',), ('weight',), ('joint',).
        max_epochs: training epochs of stage 1 / 'joint' (GPLQ: 1), run as max_epochs * len(dataloader)
            iterations.
        calib_images: images (per rank) for the quantizer init and PCA fit, and for the QwT fit.
        val_interval: validation every so many iterations (and always after training and after stage 2).
    """

    def __init__(self, runner, dataloader: Union[DataLoader, dict], stages: Sequence[str] = STAGE_ORDERS[0],
                 max_epochs: int = 1, calib_images: int = 512, val_begin: int = 1,
                 val_interval: Optional[int] = None) -> None:
        if isinstance(stages, str) or not all(isinstance(s, str) and s in STAGES for s in stages):
            raise ValueError(f'train_cfg.stages: unknown stage in {stages!r}; stages are {STAGES}')
        if tuple(stages) not in STAGE_ORDERS:
            raise ValueError(f'train_cfg.stages must be one of {STAGE_ORDERS}, got {tuple(stages)!r}')
        check_int('train_cfg.max_epochs', max_epochs, 1)
        check_int('train_cfg.calib_images', calib_images, 1)
        _gplq(runner)
        if isinstance(dataloader, dict):
            dataloader = runner.build_dataloader(dataloader, seed=runner.seed)
        self.stages, self.calib_images = tuple(stages), calib_images
        training = self.stages != ('weight', )
        max_iters = max_epochs * len(dataloader) if training else 0
        super().__init__(runner, dataloader, max_iters, val_begin, val_interval or max(max_iters, 1))
        self._calib_cfg = runner.cfg.get('train_dataloader')

    def _calib_loader(self) -> DataLoader:
        """A loader of its own over the training set (the training iterator is left untouched), the same on every
        rank."""
        return calibration_loader(self.runner, self._calib_cfg)

    def prepare(self, model: GPLQ) -> None:
        """Before training: (joint: weight quantizers on,) activation quantizers and the PCA basis from data."""
        batches = calib_inputs(model, self._calib_loader(), self.calib_images)
        if self.stages == ('joint', ):
            calibrate_weights(model)
        count = calibrate_activations(model, batches)
        components = fit_feature_pca(model, batches) if model.feature_loss_weight else 0
        broadcast_state(model)
        print_log(f'GPLQ: {count} activation quantizers initialised on {sum(map(len, batches))} images'
                  + (f'; PCA of the teacher features keeps {components} components' if components else ''),
                  logger='current')

    def run(self) -> torch.nn.Module:
        model = _gplq(self.runner)
        if self._max_iters:
            if self._iter == 0:
                self.prepare(model)
            super().run()
        if 'weight' in self.stages and not all(q.calibrated for q in model.weight_quantizers()):
            self.run_stage2(model, self._calib_loader(), self.calib_images)
            save_quantized(self.runner, model, last=True)
            if self.runner.val_loop is not None:
                self.runner.val_loop.run()
        return self.runner.model


@LOOPS.register_module()
class GPLQTestLoop(TestLoop, _Stage2):
    """Test a GPLQ checkpoint; one without stage 2 (a stage-1 or a float checkpoint) first gets it on
    `calib_images` training images, and the result is saved as `gplq_<bits>.pth` in the work dir."""

    def __init__(self, runner, dataloader: Union[DataLoader, dict], evaluator, calib_images: int = 512,
                 fp16: bool = False) -> None:
        check_int('test_cfg.calib_images', calib_images, 1)
        if runner.cfg.get('train_dataloader') is None:
            raise ValueError('train_dataloader: GPLQTestLoop calibrates stage 2 on it; set one in the config')
        super().__init__(runner, dataloader, evaluator, fp16)
        self.calib_images = calib_images

    def run(self) -> dict:
        model = _gplq(self.runner)
        if all(q.calibrated for q in model.weight_quantizers()):
            print_log('GPLQ: the checkpoint has its weight quantizers calibrated; testing it as it is',
                      logger='current')
        else:
            loader = calibration_loader(self.runner, self.runner.cfg.train_dataloader)
            self.run_stage2(model, loader, self.calib_images)
            save_quantized(self.runner, model)
        return super().run()
