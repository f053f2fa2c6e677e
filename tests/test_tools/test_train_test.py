"""tools/train.py and tools/test.py on a Fashion-MNIST subset: the test tool reproduces the last validation top-1."""
import json
import os
import re
import runpy
import subprocess
import sys

import pytest
from mmvitq.utils import load_checkpoint_file

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG = 'configs/fp/deit-tiny-p4_fashion-mnist.py'


@pytest.fixture(scope='module')
def data_root(tmp_path_factory):
    from mmvitq.datasets import prepare_fashion_mnist
    root = str(tmp_path_factory.mktemp('fmnist'))
    prepare_fashion_mnist(root)
    return root


def run(args, cwd=ROOT, timeout=600):
    proc = subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr


@pytest.fixture(scope='module')
def trained(data_root, tmp_path_factory):
    """A float ViT trained 1 epoch on 256 images: (checkpoint, its last validation top-1, the subset options)."""
    work_dir = tmp_path_factory.mktemp('fp32')
    subset = [f'train_dataloader.dataset.data_root={data_root}', f'val_dataloader.dataset.data_root={data_root}',
              f'test_dataloader.dataset.data_root={data_root}', 'train_dataloader.dataset.indices=256',
              'val_dataloader.dataset.indices=128', 'test_dataloader.dataset.indices=128', 'train_cfg.max_epochs=1',
              'train_dataloader.batch_size=64']
    log = run(['tools/train.py', CONFIG, '--work-dir', str(work_dir), '--cfg-options', *subset])
    val_top1 = float(re.findall(r'Epoch\(val\) \[1\]\[\d+/\d+\]\s+accuracy/top1: ([\d.]+)', log)[-1])
    return str(work_dir / 'epoch_1.pth'), val_top1, subset


def test_train_then_test_agree(trained, tmp_path):
    checkpoint, val_top1, subset = trained
    run(['tools/test.py', CONFIG, checkpoint, '--work-dir', str(tmp_path), '--out', str(tmp_path / 'metrics.json'),
         '--cfg-options', *subset])
    with open(tmp_path / 'metrics.json') as f:
        assert json.load(f)['accuracy/top1'] == pytest.approx(val_top1, abs=1e-3)

    # PTQ of that float checkpoint through test_cfg: calibrated on 64 training images, saved, evaluated.
    ptq = 'configs/ptq/ptq-minmax_deit-tiny-p4_8w8a_fashion-mnist.py'
    log = run(['tools/test.py', ptq, checkpoint, '--work-dir', str(tmp_path / 'ptq'), '--out',
               str(tmp_path / 'ptq.json'), '--cfg-options', *subset, 'test_cfg.num_images=64'])
    assert re.search(r'PTQ: calibrated (\d+)/\1 quantizers on 64 images', log)
    with open(tmp_path / 'ptq.json') as f:
        assert abs(json.load(f)['accuracy/top1'] - val_top1) <= 3.0  # W8A8 of a 1-epoch model, 128 images
    state = load_checkpoint_file(str(tmp_path / 'ptq' / 'ptq_w8a8.pth'))['state_dict']
    flags = [v for k, v in state.items() if k.endswith('.calibrated')]
    assert flags and all(bool(f) for f in flags)


def test_repq_checkpoint_tests_as_saved(trained, tmp_path):
    """RepQViTTestLoop folds 2 post-LN inputs per block; its saved checkpoint re-tests to the same top-1."""
    checkpoint, _, subset = trained
    repq = 'configs/ptq/ptq-repq_deit-tiny-p4_4w4a_fashion-mnist.py'
    options = ['--cfg-options', *subset, 'test_cfg.num_images=64']
    log = run(['tools/test.py', repq, checkpoint, '--work-dir', str(tmp_path), '--out', str(tmp_path / 'a.json'),
               *options])
    assert 'RepQ-ViT: folded per-channel scales of 12 post-LayerNorm inputs' in log
    log = run(['tools/test.py', repq, str(tmp_path / 'repq_w4a4.pth'), '--work-dir', str(tmp_path / 'again'),
               '--out', str(tmp_path / 'b.json'), *options])
    assert 'testing it as it is' in log and 'RepQ-ViT: folded' not in log
    with open(tmp_path / 'a.json') as a, open(tmp_path / 'b.json') as b:
        assert json.load(a) == json.load(b)


def test_lampq_searches_then_tests_and_its_checkpoint_retests(trained, tmp_path):
    """LampQTestLoop: the allocation meets the budget, is saved in the checkpoint, which re-tests as it is."""
    checkpoint, _, subset = trained
    config = 'configs/lampq/lampq_deit-tiny-p4_4bit_fashion-mnist.py'
    options = ['--cfg-options', *subset, 'test_cfg.num_images=64', 'test_cfg.search_images=64',
               'test_cfg.weight_bits=3.5']
    log = run(['tools/test.py', config, checkpoint, '--work-dir', str(tmp_path), '--out', str(tmp_path / 'a.json'),
               *options])
    assert re.search(r'LampQ: 37 layers, [123] rounds on 64 images', log)
    with open(tmp_path / 'lampq_w3.5a3.5_allocation.json') as f:
        report = json.load(f)
    assert report['average_weight_bits'] <= 3.5 + 1e-9 and report['average_act_bits'] <= 3.5 + 1e-9
    state = load_checkpoint_file(str(tmp_path / 'lampq_w3.5a3.5.pth'))['state_dict']
    for path, bits in report['allocation'].items():
        if path.endswith(('.qk', '.av')):  # attention matmuls: both inputs
            expected = {'a_quant': bits['a_bits'], 'b_quant': bits['a_bits']}
        else:
            expected = {'weight_quant': bits['w_bits'], 'input_quant': bits['a_bits']}
        assert {name: int(state[f'backbone.{path}.{name}.bits']) for name in expected} == expected
    log = run(['tools/test.py', config, str(tmp_path / 'lampq_w3.5a3.5.pth'), '--work-dir', str(tmp_path / 'again'),
               '--out', str(tmp_path / 'b.json'), *options])
    assert 'testing it as it is' in log and 'LampQ:' not in log
    with open(tmp_path / 'a.json') as a, open(tmp_path / 'b.json') as b:
        assert json.load(a) == json.load(b)


def test_plain_qat_trains_then_test_tool_reproduces(trained, tmp_path):
    """configs/qat: the quantizers initialised on 64 images before the first step, 4 iterations, and tools/test.py on
    the last checkpoint gives the last validation's top-1."""
    checkpoint, _, subset = trained
    config = 'configs/qat/lsq_deit-tiny-p4_4w4a_fashion-mnist.py'
    options = [o for o in subset if not o.startswith('train_cfg.')] + [
        f'model.checkpoint={checkpoint}', 'train_cfg.max_iters=4', 'train_cfg.val_interval=4',
        'custom_hooks.0.num_images=64']
    log = run(['tools/train.py', config, '--work-dir', str(tmp_path), '--cfg-options', *options])
    assert re.search(r'QuantizerInitHook: (\d+)/\1 quantizers initialised on 64 images', log)
    val_top1 = float(re.findall(r'Iter\(val\) \[\d+/\d+\]\s+accuracy/top1: ([\d.]+)', log)[-1])
    run(['tools/test.py', config, str(tmp_path / 'iter_4.pth'), '--work-dir', str(tmp_path / 'test'), '--out',
         str(tmp_path / 'metrics.json'), '--cfg-options', *options])
    with open(tmp_path / 'metrics.json') as f:
        assert json.load(f)['accuracy/top1'] == pytest.approx(val_top1, abs=1e-3)


def test_demo_runs_every_method(trained, tmp_path):
    checkpoint, _, subset = trained
    run(['tools/demo.py', '--full', '--checkpoint', checkpoint, '--bits', '4', '--work-dir', str(tmp_path), '--out',
         str(tmp_path / 'results'), '--bank-root', str(tmp_path / 'banks'), '--vvtq-iters', '2', '--cfg-options',
         *subset], timeout=1500)  # a dozen runs in one process
    with open(tmp_path / 'results' / 'demo_full_w4.json') as f:
        rows = json.load(f)
    demo = runpy.run_path(os.path.join(ROOT, 'tools', 'demo.py'))
    expected = [('FP32', None)] + [(demo['row_label'](row, 2), 4) for row in demo['FULL_ROWS'] if 4 in row.bits]
    assert [(r['method'], r['bits']) for r in rows] == expected
    assert all(0 <= r['top1'] <= 100 and r['seconds'] > 0 and r['peak_mib'] > 100 for r in rows)
    assert (tmp_path / 'results' / 'demo_full_w4.png').stat().st_size > 10_000
    assert (tmp_path / 'results' / 'demo_full_w4.md').read_text().count('| W4A4 |') == len(rows) - 1


def test_demo_default_rows_are_a_labelled_subset_of_full(tmp_path):
    """The default demo's rows are --full's rows (same configs and widths), its trained rows on a shorter schedule
    that their label names and their commands apply; --full trains on the whole training set."""
    demo = runpy.run_path(os.path.join(ROOT, 'tools', 'demo.py'))
    full = {(row.config, bits): row for row in demo['FULL_ROWS'] for bits in row.bits}
    for row in demo['DEFAULT_ROWS']:
        for bits in row.bits:
            assert (row.config, bits) in full, row
            if row.kind in ('ptq', 'lampq'):
                assert full[row.config, bits]._replace(bits=row.bits) == row
    short = [row for row in demo['DEFAULT_ROWS'] if row.kind in ('train', 'vvtq')]
    assert {row.kind for row in short} == {'train', 'vvtq'}
    assert all(row.train_images == demo['TRAIN_IMAGES'] // 4 and '1/4 epoch' in row.method for row in short)
    assert all(row.train_images is None and '1 epoch' in row.method
               for row in demo['FULL_ROWS'] if row.kind in ('train', 'vvtq'))

    def plan(*argv):
        args = demo['parse_args'](['--work-dir', str(tmp_path), *argv])
        return {label: ' '.join(train_cmd or []) for label, _, _, _, train_cmd in demo['plan'](args, 'float.pth')}

    default, everything = plan(), plan('--full')
    assert set(default) <= set(everything) | {row.method for row in short}
    assert len(default) < len(everything)
    for row in short:
        assert 'indices=15000' in default[row.method] and 'val_cfg=None' in default[row.method]
    assert 'VVTQ (1/4 epoch)' in default and 'max_iters=118 ' in default['VVTQ (1/4 epoch)']
    assert not any('indices=' in cmd for cmd in everything.values())
    assert 'max_iters=469 ' in everything['VVTQ (1 epoch)']
    assert demo['report_name'](False, [8, 4]) == 'demo' and demo['report_name'](True, [8, 4]) == 'demo_full'
    assert demo['report_name'](True, [4]) == 'demo_full_w4'


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
    assert proc.returncode != 0 and 'test_cfg.num_images must be an int >= 1, got 0' in proc.stderr


def test_bad_lampq_setting_fails_before_calibration(tmp_path):
    proc = subprocess.run([sys.executable, 'tools/test.py', 'configs/lampq/lampq_deit-tiny-p4_4bit_fashion-mnist.py',
                           str(tmp_path / 'none.pth'), '--work-dir', str(tmp_path), '--cfg-options',
                           'test_cfg.weight_bits=9'], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode != 0 and 'test_cfg.weight_bits must be a number in 2..8' in proc.stderr
    assert not [p for p in os.listdir(tmp_path) if p.endswith(('.pth', '.json', '.png'))]  # no allocation, no model
