"""Every LampQ config builds and runs one search round: the Fashion-MNIST ones and the GPU recipes (ImageNet
DeiT-S, COCO Mask R-CNN Swin-T) with random weights on synthetic inputs; nothing is downloaded."""
import glob
import os

import pytest
from mmengine.config import Config
from mmengine.registry import MODELS, DefaultScope

import mmvitq  # noqa: F401  (registers the quantized backbones and LampQTestLoop)
from mmvitq.methods.lampq import search_allocation

from .synthetic import fake_batch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIGS = sorted(os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, 'configs', 'lampq', '*.py')))


@pytest.mark.parametrize('config', CONFIGS)
def test_config_builds_and_searches_one_round(config):
    cfg = Config.fromfile(os.path.join(ROOT, config))
    assert cfg.test_cfg.type == 'LampQTestLoop'
    if cfg.default_scope == 'mmpretrain':
        cfg.model.setdefault('data_preprocessor', cfg.get('data_preprocessor'))
    settings = {k: cfg.test_cfg[k] for k in ('weight_bits', 'bits') if k in cfg.test_cfg}
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        model = MODELS.build(cfg.model)  # random weights: init_weights (a download) is never called
        data = model.data_preprocessor(fake_batch(cfg.model, cfg.default_scope), False)
        result = search_allocation(model, [data], rounds=1, **settings)
    units = result.units
    assert units and set(result.allocation) == {u.path for u in units}
    average = sum(u.params * result.allocation[u.path].get('w_bits', 0) for u in units) / sum(u.params for u in units)
    assert average <= settings['weight_bits'] + 1e-9
