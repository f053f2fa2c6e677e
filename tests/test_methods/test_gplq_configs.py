"""Every GPLQ config builds and trains one iteration: the Fashion-MNIST ones and the GPU recipes (ImageNet DeiT-S
and Swin-T, COCO Mask R-CNN Swin-T) with random weights on synthetic inputs; nothing is downloaded."""
import glob
import os

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import OptimWrapper
from mmengine.registry import MODELS, DefaultScope

import mmvitq  # noqa: F401  (registers GPLQ)
from mmvitq.methods.gplq.stages import calibrate_activations, fit_feature_pca

from .synthetic import fake_batch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIGS = sorted(os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, 'configs', 'gplq', '*.py')))


@pytest.mark.parametrize('config', CONFIGS)
def test_config_builds_and_trains_one_iteration(config):
    cfg = Config.fromfile(os.path.join(ROOT, config))
    assert cfg.train_cfg.type == 'GPLQTrainLoop' and cfg.test_cfg.type == 'GPLQTestLoop'
    if cfg.default_scope == 'mmpretrain':
        cfg.model.setdefault('data_preprocessor', cfg.get('data_preprocessor'))
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        if cfg.model.teacher_checkpoint.startswith('checkpoints/'):
            cfg.model.teacher_checkpoint = os.path.join(ROOT, cfg.model.teacher_checkpoint)
        model = MODELS.build(cfg.model)  # random weights: init_weights (the download) is never called
        batch = fake_batch(cfg.model.architecture, cfg.default_scope)
        inputs = model.data_preprocessor(batch, False)['inputs']
        assert calibrate_activations(model, [inputs]) == len(model.activation_quantizers()) > 0
        if model.feature_loss_weight:
            assert fit_feature_pca(model, [inputs]) >= 1
        model.train()
        optim = OptimWrapper(torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4))
        before = [p.detach().clone() for p in model.student.backbone.parameters()]
        losses = model.train_step(batch, optim)
    assert all(torch.isfinite(v).all() for v in losses.values())
    assert ('loss_mimic' in losses) == bool(model.feature_loss_weight)
    changed = [not torch.equal(a, b) for a, b in zip(before, model.student.backbone.parameters())]
    assert sum(changed) > len(changed) // 2  # float weights and activation scales both train in stage 1
