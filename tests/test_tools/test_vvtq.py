"""VVTQ through tools/train.py and tools/test.py on a Fashion-MNIST subset, from the committed float ViT: the
label bank is built once and reused, a run killed mid-way resumes to the same model, two-process DDP runs."""
import json
import os
import re
import shutil
import socket
import subprocess
import sys

import pytest
import torch

from mmvitq.utils import load_checkpoint_file

from .test_train_test import ROOT, data_root, run  # noqa: F401  (data_root is a fixture)

CONFIG = 'configs/vvtq/vvtq_deit-tiny-p4_4w4a_fashion-mnist.py'
VAL = r'Iter\(val\) \[\d+/\d+\]\s+accuracy/top1: ([\d.]+)'


def subset(root: str, banks: str, batch_size: int = 64) -> list[str]:
    """256 training images (4 iterations at batch 64, a checkpoint every 2), 128 test images, 64 for the init."""
    return [f'train_dataloader.dataset.dataset.data_root={root}', f'val_dataloader.dataset.data_root={root}',
            f'test_dataloader.dataset.data_root={root}', 'train_dataloader.dataset.dataset.indices=256',
            f'train_dataloader.dataset.bank_root={banks}', f'train_dataloader.batch_size={batch_size}',
            'val_dataloader.dataset.indices=128', 'test_dataloader.dataset.indices=128', 'train_cfg.max_iters=4',
            'train_cfg.val_interval=4', 'param_scheduler.0.end=4', 'default_hooks.checkpoint.interval=2',
            'custom_hooks.0.num_images=64', 'custom_hooks.2.log_interval=1']


def train(work_dir, options: list[str], *extra: str) -> tuple[list[float], str]:
    log = run(['tools/train.py', CONFIG, '--work-dir', str(work_dir), *extra, '--cfg-options', *options])
    return [float(v) for v in re.findall(VAL, log)], log


def state_of(path) -> dict:
    return load_checkpoint_file(str(path))['state_dict']


@pytest.fixture(scope='module')
def vvtq_run(data_root, tmp_path_factory):  # noqa: F811
    work_dir, banks = tmp_path_factory.mktemp('vvtq'), tmp_path_factory.mktemp('banks')
    tops, log = train(work_dir, subset(data_root, banks))
    return work_dir, banks, tops, log


def test_trains_from_the_float_model_and_test_tool_reproduces(vvtq_run, data_root, tmp_path):  # noqa: F811
    work_dir, banks, tops, log = vvtq_run
    assert re.search(r'label bank: building \S+ \(256 images x 4 crops\)', log)
    assert 'QuantizerInitHook: 74/74 quantizers initialised on 64 images' in log
    # The committed float ViT scores about 89% on the full test set; W4A4 after 4 iterations stays close.
    assert len(tops) == 1 and tops[0] > 75
    with open(work_dir / 'oscillation.json') as f:
        report = json.load(f)
    assert len(report['layers']) == 25 and [it for it, _ in report['history']] == [1, 2, 3, 4]
    assert (work_dir / 'oscillation.png').stat().st_size > 5_000
    out = tmp_path / 'metrics.json'
    run(['tools/test.py', CONFIG, str(work_dir / 'iter_4.pth'), '--work-dir', str(tmp_path), '--out', str(out),
         '--cfg-options', *subset(data_root, banks)])
    with open(out) as f:
        assert json.load(f)['accuracy/top1'] == pytest.approx(tops[0], abs=1e-3)


def test_resume_reuses_the_bank_and_gives_the_same_model(vvtq_run, data_root, tmp_path):  # noqa: F811
    """A run killed after iteration 2 of 4 and resumed ends with the same weights, scales and top-1."""
    work_dir, banks, tops, _ = vvtq_run
    shutil.copy(work_dir / 'iter_2.pth', tmp_path / 'iter_2.pth')
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'iter_2.pth'))
    resumed, log = train(tmp_path, subset(data_root, banks), '--resume')
    assert 'Advance dataloader 2 steps' in log and 'QuantizerInitHook:' not in log
    assert 'label bank: building' not in log and 'label bank: ' in log
    assert resumed == pytest.approx(tops, abs=1e-6)
    first, again = state_of(work_dir / 'iter_4.pth'), state_of(tmp_path / 'iter_4.pth')
    assert first.keys() == again.keys() and all(torch.equal(first[k], again[k]) for k in first)
    with open(work_dir / 'oscillation.json') as a, open(tmp_path / 'oscillation.json') as b:
        assert json.load(a) == json.load(b)


def test_two_process_ddp_builds_the_same_bank_and_trains(vvtq_run, data_root, tmp_path):  # noqa: F811
    """torchrun, 2 CPU processes (gloo), batch 32 each = the single run's 64: each rank labels half the images, the
    joined bank equals the one-process bank, and the top-1 is the same within noise."""
    _, banks, tops, _ = vvtq_run
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    log = run(['-m', 'torch.distributed.run', '--nproc_per_node=2', f'--master_port={port}', 'tools/train.py', CONFIG,
               '--launcher', 'pytorch', '--work-dir', str(tmp_path), '--cfg-options',
               *subset(data_root, tmp_path / 'banks', 32)])
    distributed = [float(v) for v in re.findall(VAL, log)]
    assert re.search(r'label bank: building \S+ \(256 images x 4 crops, 2 ranks\)', log)
    assert 'QuantizerInitHook: 74/74 quantizers initialised' in log
    from mmvitq.methods.vvtq import LabelBank
    one, two = (LabelBank(os.path.join(root, *os.listdir(root))) for root in (banks, tmp_path / 'banks'))
    for name in ('boxes', 'flips', 'classes'):
        assert (one.arrays[name] == two.arrays[name]).all(), name
    assert abs(one.arrays['probs'] - two.arrays['probs']).max() < 1e-5
    assert len(distributed) == 1 and abs(distributed[0] - tops[0]) <= 3.0  # 128 test images: 1 image = 0.8 pt
    assert (tmp_path / 'iter_4.pth').is_file()


def test_bad_setting_fails_before_the_bank_is_built(data_root, tmp_path):  # noqa: F811
    proc = subprocess.run([sys.executable, 'tools/train.py', CONFIG, '--work-dir', str(tmp_path), '--cfg-options',
                           *subset(data_root, tmp_path / 'banks'), 'model.regularizer.start=2'],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode != 0 and 'model.regularizer.start must be a number in [0, 1.0), got 2' in proc.stderr
    assert not os.path.exists(tmp_path / 'banks')
