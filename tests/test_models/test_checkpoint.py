"""A quantized model's checkpoint restores every quantizer bit-exactly: on mmengine resume, and from a
published checkpoint loaded with torch.load(weights_only=True)."""
import os
import sys

import pytest
import torch
from mmpretrain.structures import DataSample

import mmvitq  # noqa: F401  (registers QuantVisionTransformer)
from mmvitq.engine import Runner
from mmvitq.quantizers import BaseQuantizer
from mmvitq.utils import load_checkpoint_file

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', '..', 'tools'))
from publish_model import publish  # noqa: E402

MODEL = dict(
    type='ImageClassifier',
    backbone=dict(type='QuantVisionTransformer', arch=dict(embed_dims=32, num_layers=2, num_heads=2,
                                                           feedforward_channels=64),
                  img_size=32, patch_size=8, drop_rate=0.0,
                  qconfig=dict(w_bits=4, a_bits=4, weight=dict(type='LSQQuantizer', init='minmax'),
                               act=dict(type='LSQQuantizer', init='minmax', symmetric=False))),
    neck=None,
    head=dict(type='VisionTransformerClsHead', num_classes=10, in_channels=32))


class TinySet(torch.utils.data.Dataset):

    def __len__(self):
        return 16

    def __getitem__(self, i):
        g = torch.Generator().manual_seed(i)
        return dict(inputs=torch.randn(3, 32, 32, generator=g) * 50 + 128,
                    data_samples=DataSample().set_gt_label(i % 10))


def make_runner(work_dir, resume=False):
    return Runner(
        model=MODEL, work_dir=str(work_dir), default_scope='mmpretrain',
        train_dataloader=dict(dataset=TinySet(), sampler=dict(type='DefaultSampler', shuffle=False), batch_size=4,
                              num_workers=0),
        train_cfg=dict(by_epoch=False, max_iters=4),
        optim_wrapper=dict(optimizer=dict(type='AdamW', lr=1e-2)),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=2, by_epoch=False),
                           logger=dict(type='LoggerHook', interval=1)),
        randomness=dict(seed=0), resume=resume)


def quantizer_state(model):
    return {k: v.clone() for k, v in model.state_dict().items()
            if k.endswith(('.scale', '.zero_point', '.bits', '.calibrated'))}


def assert_same(a, b):
    assert a.keys() == b.keys() and len(a) > 0
    for k in a:
        assert a[k].dtype == b[k].dtype and torch.equal(a[k], b[k]), k


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    work_dir = tmp_path_factory.mktemp('run')
    runner = make_runner(work_dir)
    runner.train()
    return work_dir, quantizer_state(runner.model), runner.model


def resume_dir(work_dir, tmp_path):
    """A work dir whose last checkpoint is iteration 2 of the uninterrupted run (a run killed there)."""
    d = tmp_path / 'resumed'
    d.mkdir()
    os.symlink(work_dir / 'iter_2.pth', d / 'iter_2.pth')
    (d / 'last_checkpoint').write_text(str(d / 'iter_2.pth'))
    return d


def test_resume_restores_every_quantizer_bit_exactly(trained, tmp_path):
    work_dir, _, _ = trained
    runner = make_runner(resume_dir(work_dir, tmp_path), resume=True)
    runner.load_or_resume()
    saved = load_checkpoint_file(str(work_dir / 'iter_2.pth'))['state_dict']
    restored = quantizer_state(runner.model)
    assert_same(restored, {k: saved[k] for k in restored})
    assert runner.iter == 2
    assert all(bool(q.calibrated) for q in runner.model.modules() if isinstance(q, BaseQuantizer))


def test_killed_run_resumes_to_the_same_result(trained, tmp_path):
    work_dir, final_state, _ = trained
    runner = make_runner(resume_dir(work_dir, tmp_path), resume=True)
    runner.train()  # iterations 3 and 4, as in the uninterrupted run
    assert_same(quantizer_state(runner.model), final_state)


def test_published_checkpoint_loads_weights_only(trained, tmp_path):
    work_dir, final_state, model = trained
    path = publish(str(work_dir / 'iter_4.pth'), str(tmp_path / 'vit_w4a4.pth'))
    checkpoint = load_checkpoint_file(str(path))
    from mmpretrain.registry import MODELS
    fresh = MODELS.build(MODEL)
    fresh.load_state_dict(checkpoint['state_dict'], strict=True)
    assert_same(quantizer_state(fresh), final_state)
    x = torch.randn(2, 3, 32, 32)
    model.eval(), fresh.eval()
    with torch.no_grad():
        assert torch.equal(model(x, mode='tensor'), fresh(x, mode='tensor'))  # no re-calibration on load
    with pytest.raises(Exception):
        torch.load(work_dir / 'iter_4.pth', map_location='cpu', weights_only=True)  # the Runner's needs its allow-list


def test_backbone_type_by_scope_and_float_checkpoint_through_init_cfg(tmp_path):
    """`type='mmvitq.QuantVisionTransformer'` from an mmpretrain config; a float checkpoint loads via init_cfg."""
    from mmengine.registry import DefaultScope
    from mmpretrain.registry import MODELS
    arch = dict(embed_dims=32, num_layers=2, num_heads=2, feedforward_channels=64)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        float_vit = MODELS.build(dict(type='VisionTransformer', arch=arch, img_size=32, patch_size=8))
        torch.save({'state_dict': float_vit.state_dict()}, tmp_path / 'float.pth')
        quant_vit = MODELS.build(dict(type='mmvitq.QuantVisionTransformer', arch=arch, img_size=32, patch_size=8,
                                      qconfig=dict(w_bits=4, a_bits=4),
                                      init_cfg=dict(type='Pretrained', checkpoint=str(tmp_path / 'float.pth'))))
    quant_vit.init_weights()
    quantized = dict(quant_vit.state_dict())
    for key, value in float_vit.state_dict().items():
        assert torch.equal(quantized[key], value), key
    assert int(quant_vit.layers[0].ffn.layers[1].weight_quant.bits) == 4
