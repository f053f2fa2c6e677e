"""tools/train.py and tools/test.py on a Fashion-MNIST subset: the test tool reproduces the last validation top-1."""
import json
import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG = 'configs/fp/deit-tiny-p4_fashion-mnist.py'


@pytest.fixture(scope='module')
def data_root(tmp_path_factory):
    from mmvitq.datasets import prepare_fashion_mnist
    root = str(tmp_path_factory.mktemp('fmnist'))
    prepare_fashion_mnist(root)
    return root


def run(args, cwd=ROOT):
    proc = subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr


def test_train_then_test_agree(data_root, tmp_path):
    subset = [f'train_dataloader.dataset.data_root={data_root}', f'val_dataloader.dataset.data_root={data_root}',
              f'test_dataloader.dataset.data_root={data_root}', 'train_dataloader.dataset.indices=256',
              'val_dataloader.dataset.indices=128', 'test_dataloader.dataset.indices=128', 'train_cfg.max_epochs=1',
              'train_dataloader.batch_size=64']
    log = run(['tools/train.py', CONFIG, '--work-dir', str(tmp_path), '--cfg-options', *subset])
    val_top1 = float(re.findall(r'Epoch\(val\) \[1\]\[\d+/\d+\]\s+accuracy/top1: ([\d.]+)', log)[-1])
    assert os.path.exists(tmp_path / 'epoch_1.pth')
    run(['tools/test.py', CONFIG, str(tmp_path / 'epoch_1.pth'), '--work-dir', str(tmp_path), '--out',
         str(tmp_path / 'metrics.json'), '--cfg-options', *subset])
    with open(tmp_path / 'metrics.json') as f:
        assert json.load(f)['accuracy/top1'] == pytest.approx(val_top1, abs=1e-3)

    # PTQ of that float checkpoint through test_cfg: calibrated on 64 training images, saved, evaluated.
    ptq = 'configs/ptq/ptq-minmax_deit-tiny-p4_8w8a_fashion-mnist.py'
    log = run(['tools/test.py', ptq, str(tmp_path / 'epoch_1.pth'), '--work-dir', str(tmp_path / 'ptq'), '--out',
               str(tmp_path / 'ptq.json'), '--cfg-options', *subset, 'test_cfg.num_images=64'])
    assert re.search(r'PTQ: calibrated (\d+)/\1 quantizers on 64 images', log)
    with open(tmp_path / 'ptq.json') as f:
        assert abs(json.load(f)['accuracy/top1'] - val_top1) <= 3.0  # W8A8 of a 1-epoch model, 128 images
    import torch
    state = torch.load(tmp_path / 'ptq' / 'ptq_calibrated.pth', map_location='cpu', weights_only=False)['state_dict']
    flags = [v for k, v in state.items() if k.endswith('.calibrated')]
    assert flags and all(bool(f) for f in flags)


def test_bad_config_option_fails_before_training(tmp_path):
    proc = subprocess.run([sys.executable, 'tools/train.py', CONFIG, '--work-dir', str(tmp_path), '--cfg-options',
                           'model.backbone.type=QuantVisionTransformer', 'model.backbone.qconfig.w_bits=9'],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode != 0 and 'qconfig.w_bits must be an int in 2..8' in proc.stderr
    assert not os.path.exists(tmp_path / 'epoch_1.pth')


def test_bad_ptq_setting_fails_before_calibration(tmp_path):
    proc = subprocess.run([sys.executable, 'tools/test.py', 'configs/ptq/ptq-minmax_deit-tiny-p4_4w4a_fashion-mnist.py',
                           str(tmp_path / 'none.pth'), '--work-dir', str(tmp_path), '--cfg-options',
                           'test_cfg.num_images=0'], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode != 0 and 'PTQTestLoop: num_images must be an int >= 1, got 0' in proc.stderr
