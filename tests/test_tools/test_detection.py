"""Detection baselines through tools/train.py and tools/test.py: Mask R-CNN on Fashion-MNIST scenes (Swin + FPN,
and a plain windowed ViT + simple feature pyramid), the box-only detector on tree crowns. The committed float
checkpoints score on freshly generated data, W8A8 PTQ of their backbones stays close to them, and training on a
subset re-tests to its own validation."""
import glob
import json
import os
import re

import pytest

from .test_train_test import ROOT, run

SCENES = 'configs/fp/mask-rcnn_swin-nano-p4-w4_fpn_fashion-mnist-scenes.py'
SCENES_PTQ = 'configs/ptq/ptq-minmax_mask-rcnn_swin-nano-p4-w4_fpn_8w8a_fashion-mnist-scenes.py'
VIT_SCENES = 'configs/fp/mask-rcnn_vit-nano-p8-w8_simple-fpn_fashion-mnist-scenes.py'
VIT_SCENES_PTQ = 'configs/ptq/ptq-minmax_mask-rcnn_vit-nano-p8-w8_simple-fpn_8w8a_fashion-mnist-scenes.py'
TREES = 'configs/fp/faster-rcnn_swin-nano-p4-w4_fpn_tree-crowns.py'
TREES_PTQ = 'configs/ptq/ptq-minmax_faster-rcnn_swin-nano-p4-w4_fpn_8w8a_tree-crowns.py'


def checkpoint_of(config: str) -> str:
    """The committed float checkpoint published for `config` (checkpoints/NAME-HASH.pth)."""
    name = os.path.splitext(os.path.basename(config))[0]
    found = glob.glob(os.path.join(ROOT, 'checkpoints', f'{name}-*.pth'))
    assert len(found) == 1, f'expected one committed checkpoint for {name}, found {found}'
    return found[0]


def data_options(root: str) -> list[str]:
    """--cfg-options pointing every dataloader and evaluator of a detection config at `root`."""
    options = [f'{split}_dataloader.dataset.data_root={root}/' for split in ('train', 'val', 'test')]
    return options + [f'{split}_evaluator.ann_file={root}/annotations/val.json' for split in ('val', 'test')]


@pytest.fixture(scope='module')
def scenes(tmp_path_factory):
    """16 training scenes (train-split garments) and 32 validation scenes (test-split garments), 128 px."""
    from mmvitq.datasets import build_scenes, load_fashion_mnist, prepare_fashion_mnist
    fmnist = str(tmp_path_factory.mktemp('fmnist'))
    prepare_fashion_mnist(fmnist)
    root = str(tmp_path_factory.mktemp('scenes'))
    for split, source, count, seed in (('train', 'train', 16, 0), ('val', 'test', 32, 1)):
        items, labels, classes = load_fashion_mnist(fmnist, source)
        build_scenes(items, labels, classes, count, root, split, seed=seed)
    return root


@pytest.fixture(scope='module')
def trees(tmp_path_factory):
    from mmvitq.datasets import build_tree_crowns
    root = str(tmp_path_factory.mktemp('trees'))
    build_tree_crowns(root)
    return root


def evaluate(config: str, checkpoint: str, work_dir, options: list[str]) -> tuple[dict, str]:
    out = os.path.join(work_dir, 'metrics.json')
    log = run(['tools/test.py', config, checkpoint, '--work-dir', str(work_dir), '--out', out, '--cfg-options',
               *options])
    with open(out) as f:
        return json.load(f), log


@pytest.mark.parametrize('task', ['scenes', 'vit-scenes', 'trees'])
def test_committed_float_detector_and_its_w8a8_ptq(task, scenes, trees, tmp_path):
    # Floors far above the 0.0 of random weights and below the full validation sets' scores (scenes, Swin: bbox
    # 0.381, segm 0.409; ViT: bbox 0.381, segm 0.388; tree crowns: bbox mAP@0.5 0.200, from 42 training tiles).
    float_config, ptq_config, root, floors = {
        'scenes': (SCENES, SCENES_PTQ, scenes, {'coco/bbox_mAP': 0.3, 'coco/segm_mAP': 0.3}),
        'vit-scenes': (VIT_SCENES, VIT_SCENES_PTQ, scenes, {'coco/bbox_mAP': 0.3, 'coco/segm_mAP': 0.3}),
        'trees': (TREES, TREES_PTQ, trees, {'coco/bbox_mAP_50': 0.15})}[task]
    checkpoint = checkpoint_of(float_config)
    options = data_options(root)
    fp32, _ = evaluate(float_config, checkpoint, tmp_path / 'fp32', options)
    for key, floor in floors.items():
        assert fp32[key] >= floor, fp32
    ptq, log = evaluate(ptq_config, checkpoint, tmp_path / 'w8a8', options + ['test_cfg.num_images=16'])
    assert re.search(r'PTQ: calibrated (\d+)/\1 quantizers on 16 images', log)
    for key in (*floors, 'coco/bbox_mAP'):
        assert abs(ptq[key] - fp32[key]) <= 0.03, (key, fp32[key], ptq[key])


@pytest.mark.parametrize('task', ['scenes', 'trees'])
def test_train_on_a_subset_then_test_agrees(task, scenes, trees, tmp_path):
    config, root = dict(scenes=(SCENES, scenes), trees=(TREES, trees))[task]
    options = data_options(root) + ['train_dataloader.dataset.indices=8', 'val_dataloader.dataset.indices=8',
                                    'test_dataloader.dataset.indices=8', 'train_dataloader.batch_size=4',
                                    'train_cfg.max_epochs=1', 'train_cfg.val_interval=1']
    log = run(['tools/train.py', config, '--work-dir', str(tmp_path), '--cfg-options', *options])
    val_map = float(re.findall(r'Epoch\(val\) \[1\]\[\d+/\d+\]\s+coco/bbox_mAP: ([\d.]+)', log)[-1])
    metrics, _ = evaluate(config, str(tmp_path / 'epoch_1.pth'), tmp_path / 'test', options)
    assert metrics['coco/bbox_mAP'] == pytest.approx(val_map, abs=1e-3)
