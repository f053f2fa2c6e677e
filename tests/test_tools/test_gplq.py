"""GPLQ through tools/train.py and tools/test.py on a Fashion-MNIST subset, from the committed float ViT:
both stages in one run, stage 2 alone from a stage-1 checkpoint, resume mid-stage-1, two-process DDP."""
import json
import os
import re
import shutil
import socket

import pytest
import torch

from mmvitq.utils import load_checkpoint_file

from .test_train_test import ROOT, data_root, run  # noqa: F401  (data_root is a fixture)

CONFIG = 'configs/gplq/gplq_deit-tiny-p4_4w4a_fashion-mnist.py'
VAL = r'Iter\(val\) \[\d+/\d+\]\s+accuracy/top1: ([\d.]+)'


def subset(root: str, batch_size: int = 64) -> list[str]:
    """256 training images (4 iterations at batch 64, a checkpoint every 2), 128 test images, 64 calibration."""
    return [f'{split}_dataloader.dataset.data_root={root}' for split in ('train', 'val', 'test')] + [
        'train_dataloader.dataset.indices=256', f'train_dataloader.batch_size={batch_size}',
        'val_dataloader.dataset.indices=128', 'test_dataloader.dataset.indices=128', 'train_cfg.calib_images=64',
        'test_cfg.calib_images=64', 'default_hooks.checkpoint.interval=2'
    ]


def train(work_dir, options: list[str], *extra: str) -> tuple[list[float], str]:
    log = run(['tools/train.py', CONFIG, '--work-dir', str(work_dir), *extra, '--cfg-options', *options])
    return [float(v) for v in re.findall(VAL, log)], log


def top1_of(config_args: list[str], work_dir) -> tuple[float, str]:
    out = os.path.join(work_dir, 'metrics.json')
    log = run(['tools/test.py', CONFIG, *config_args, '--work-dir', str(work_dir), '--out', out])
    with open(out) as f:
        return json.load(f)['accuracy/top1'], log


@pytest.fixture(scope='module')
def gplq_run(data_root, tmp_path_factory):  # noqa: F811
    work_dir = tmp_path_factory.mktemp('gplq')
    tops, log = train(work_dir, subset(data_root))
    return work_dir, tops, log


def test_both_stages_then_test_tool_reproduces(gplq_run, data_root, tmp_path):  # noqa: F811
    work_dir, tops, log = gplq_run
    assert re.search(r'GPLQ: 49 activation quantizers initialised on 64 images; PCA of the teacher features keeps '
                     r'\d+ components', log)
    assert 'GPLQ stage 2: 25 weight quantizers calibrated; QwT compensation of 6 blocks on 64 images' in log
    assert len(tops) == 2  # after stage 1 (float weights) and after stage 2 (W4A4)
    assert (work_dir / 'gplq_w4a4.pth').is_file() and (work_dir / 'iter_4.pth').is_file()
    # The committed float ViT scores about 89% on the full test set; W4A4 after 4 iterations stays close.
    assert tops[1] > 75

    # Stage 2 alone, from the stage-1 checkpoint, through tools/test.py: the same W4A4 model.
    options = ['--cfg-options', *subset(data_root)]
    top1, log = top1_of([str(work_dir / 'iter_4.pth'), *options], tmp_path / 'stage2')
    assert 'GPLQ stage 2: 25 weight quantizers calibrated' in log
    assert top1 == pytest.approx(tops[1], abs=1e-3)  # the log rounds to 4 decimals
    top1, log = top1_of([str(work_dir / 'gplq_w4a4.pth'), *options], tmp_path / 'final')
    assert 'testing it as it is' in log and top1 == pytest.approx(tops[1], abs=1e-3)

    # Stage 2 alone from the float checkpoint: PTQ (activations from their min-max init) with QwT.
    float_ckpt = os.path.join(ROOT, 'checkpoints', 'deit-tiny-p4_fashion-mnist-c4de163e.pth')
    top1, log = top1_of([float_ckpt, *options], tmp_path / 'ptq')
    assert 'GPLQ stage 2: 25 weight quantizers calibrated' in log and 50 < top1 <= 100


def test_resume_mid_stage1_gives_the_same_model(gplq_run, data_root, tmp_path):  # noqa: F811
    """A run killed after iteration 2 of 4 and resumed ends with the same W4A4 weights and top-1."""
    work_dir, tops, _ = gplq_run
    shutil.copy(work_dir / 'iter_2.pth', tmp_path / 'iter_2.pth')
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'iter_2.pth'))
    resumed, log = train(tmp_path, subset(data_root), '--resume')
    assert 'Advance dataloader 2 steps' in log and 'activation quantizers initialised' not in log
    assert resumed == pytest.approx(tops, abs=1e-6)
    first = load_checkpoint_file(str(work_dir / 'gplq_w4a4.pth'))['state_dict']
    again = load_checkpoint_file(str(tmp_path / 'gplq_w4a4.pth'))['state_dict']
    assert first.keys() == again.keys()
    assert all(torch.equal(first[k], again[k]) for k in first)


def test_two_process_ddp_matches_one_process(gplq_run, data_root, tmp_path):  # noqa: F811
    """torchrun, 2 CPU processes (gloo), batch 32 each = the single run's 64: the same top-1 within noise."""
    _, tops, _ = gplq_run
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    log = run(['-m', 'torch.distributed.run', '--nproc_per_node=2', f'--master_port={port}', 'tools/train.py', CONFIG,
               '--launcher', 'pytorch', '--work-dir', str(tmp_path), '--cfg-options', *subset(data_root, 32)])
    distributed = [float(v) for v in re.findall(VAL, log)]
    assert 'GPLQ stage 2: 25 weight quantizers calibrated' in log
    assert len(distributed) == 2 and abs(distributed[1] - tops[1]) <= 3.0  # 128 test images: 1 image = 0.8 pt
