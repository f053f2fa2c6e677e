"""Every VVTQ config builds and trains one iteration: the Fashion-MNIST ViT/Swin at 4, 3 and 2 bits, the scenes
Mask R-CNN and the GPU recipes (ImageNet DeiT-T and Swin-T) with random weights on synthetic inputs, soft labels
included for classifiers; nothing is downloaded."""
import glob
import inspect
import os

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import OptimWrapper
from mmengine.registry import MODELS, DefaultScope
from mmpretrain.datasets.transforms import RandomResizedCrop

import mmvitq  # noqa: F401  (registers VVTQ)
from mmvitq.methods.vvtq import BankedResizedCrop
from mmvitq.quantizers import calibration, quantizers_of

from .synthetic import fake_batch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIGS = sorted(os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, 'configs', 'vvtq', '*.py')))


def test_every_required_config_exists():
    names = {os.path.basename(c) for c in CONFIGS}
    for model in ('deit-tiny-p4', 'swin-tiny-p2'):
        assert {f'vvtq_{model}_{b}w{b}a_fashion-mnist.py' for b in (4, 3, 2)} <= names
    assert {'vvtq_mask-rcnn_swin-nano-p4-w4_fpn_4w4a_fashion-mnist-scenes.py', 'vvtq_deit-tiny-p16_4w4a_in1k.py',
            'vvtq_swin-tiny-p4-w7_4w4a_in1k.py'} <= names


def _args(cls: type, step: dict, *names: str) -> list:
    """`step`'s values of `cls`'s arguments `names`, defaults filled in from the signature."""
    params = inspect.signature(cls).parameters
    return [tuple(v) if isinstance(v := step.get(n, params[n].default), (list, tuple)) else v for n in names]


@pytest.mark.parametrize('config', [c for c in CONFIGS if 'mask-rcnn' not in c])
def test_bank_views_are_the_float_models_training_views(config):
    """The recipe's rule: the label bank's crops and flips are those the float model trained on (RandomResizedCrop
    on ImageNet, whole images with flips on Fashion-MNIST), so the teacher labels views it knows."""
    cfg = Config.fromfile(os.path.join(ROOT, config))
    float_steps = {t['type']: t for t in cfg.train_pipeline}
    bank_crop = next(t for t in cfg.train_dataloader.dataset.pipeline if t['type'] == 'BankedResizedCrop')
    scale, ratio, flip = _args(BankedResizedCrop, bank_crop, 'scale', 'ratio', 'flip_prob')
    if 'RandomResizedCrop' in float_steps:
        assert [scale, ratio] == _args(RandomResizedCrop, float_steps['RandomResizedCrop'], 'crop_ratio_range',
                                       'aspect_ratio_range')
    else:
        assert scale == ratio == (1.0, 1.0)
    assert flip == float_steps.get('RandomFlip', dict(prob=0.0))['prob']


@pytest.mark.parametrize('config', CONFIGS)
def test_config_builds_and_trains_one_iteration(config):
    cfg = Config.fromfile(os.path.join(ROOT, config))
    hooks = [h.type for h in cfg.custom_hooks]
    assert hooks[:3] == ['QuantizerInitHook', 'ProgressHook', 'OscillationTrackerHook']
    if cfg.default_scope == 'mmpretrain':
        cfg.model.setdefault('data_preprocessor', cfg.get('data_preprocessor'))
        bits = config.split('_')[2][0]
        assert cfg.train_dataloader.dataset.type == 'LabelBankDataset'
        assert cfg.train_dataloader.dataset.teacher == cfg.model.architecture
        if 'in1k' in config:  # the published recipe
            assert cfg.train_cfg.max_epochs == 150 and cfg.optim_wrapper.optimizer.lr == 5e-4
            assert cfg.train_dataloader.batch_size * 4 == 512 and cfg.train_dataloader.dataset.num_crops == 4
            assert cfg.model.architecture.get('train_cfg') is None  # no Mixup/CutMix over the soft labels
        else:
            assert int(bits) == cfg.model.qconfig.w_bits == cfg.model.qconfig.a_bits
    # Min-max initial ranges instead of the recipe's MSE search: the same quantizers, a hundred times cheaper here
    # (the MSE init is checked in tests/test_quantizers).
    for point in ('weight', 'act'):
        cfg.model.qconfig[point]['init'] = 'minmax'
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        model = MODELS.build(cfg.model)  # random weights: init_weights (the checkpoint) is never called
        batch = fake_batch(cfg.model.architecture, cfg.default_scope)
        if cfg.default_scope == 'mmpretrain':
            for sample in batch['data_samples']:
                sample.set_gt_score(torch.softmax(torch.randn(cfg.model.architecture.head.num_classes), 0))
        data = model.data_preprocessor(batch, False)
        with torch.no_grad(), calibration(model):
            model(data['inputs'], data['data_samples'], mode='tensor')
        assert all(q.calibrated for q in quantizers_of(model))
        model.train()
        model.progress = 1.0
        optim = OptimWrapper(torch.optim.AdamW(model.parameters(), lr=1e-4))
        before = [p.detach().clone() for p in model.student.backbone.parameters()]
        losses = model.train_step(batch, optim)
    assert all(torch.isfinite(v).all() for v in losses.values())
    assert ('loss_kd' in losses) == (cfg.default_scope == 'mmpretrain') and 'loss_osc' in losses
    changed = [not torch.equal(a, b) for a, b in zip(before, model.student.backbone.parameters())]
    assert sum(changed) > len(changed) // 2  # weights and quantizer scales all train
