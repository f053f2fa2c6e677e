"""Every calibrating test loop under `torchrun --nproc_per_node=2 ... --launcher pytorch` (gloo on CPU) gives the
model one process gives: the same top-1 on a test subset, and both ranks hold identical state (checked bit for
bit), within a timeout far below CI's."""
import json
import os
import socket
import subprocess
import sys

import pytest
import torch

from .test_train_test import ROOT, data_root  # noqa: F401  (data_root is a fixture)

FLOAT = os.path.join(ROOT, 'checkpoints', 'deit-tiny-p4_fashion-mnist-c4de163e.pth')
CONFIGS = {
    'ptq-minmax': ('configs/ptq/ptq-minmax_deit-tiny-p4_4w4a_fashion-mnist.py', ['test_cfg.num_images=64']),
    'repq': ('configs/ptq/ptq-repq_deit-tiny-p4_4w4a_fashion-mnist.py', ['test_cfg.num_images=64']),
    'lampq': ('configs/lampq/lampq_deit-tiny-p4_4bit_fashion-mnist.py',
              ['test_cfg.num_images=64', 'test_cfg.search_images=32', 'test_cfg.rounds=2']),
    'gplq': ('configs/gplq/gplq_deit-tiny-p4_4w4a_fashion-mnist.py', ['test_cfg.calib_images=64']),
}
TEST_IMAGES = 128  # one image = 0.78 pt


def run_test(config: str, options: list[str], work_dir, processes: int) -> float:
    """tools/test.py of the float checkpoint, in 1 process or under torchrun; returns top-1."""
    wrapped = work_dir / 'config.py'
    wrapped.write_text(f"_base_ = ['{os.path.join(ROOT, config)}']\n"
                       "custom_imports = dict(imports=['mmvitq', 'test_tools.rank_state'])\n"
                       "custom_hooks = [dict(type='RankStateHook')]\n")
    if processes == 1:
        launch = [sys.executable, 'tools/test.py']
    else:
        with socket.socket() as s:
            s.bind(('127.0.0.1', 0))
            port = s.getsockname()[1]
        launch = [sys.executable, '-m', 'torch.distributed.run', f'--nproc_per_node={processes}',
                  f'--master_port={port}', 'tools/test.py']
    out = work_dir / 'metrics.json'
    args = launch + [str(wrapped), FLOAT, '--work-dir', str(work_dir), '--out', str(out), '--cfg-options', *options]
    args += ['--launcher', 'pytorch'] if processes > 1 else []
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.join(ROOT, 'tests'), os.environ.get('PYTHONPATH', '')]))
    proc = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=420, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    with open(out) as f:
        return json.load(f)['accuracy/top1']


@pytest.mark.parametrize('method', CONFIGS)
def test_two_processes_give_the_model_of_one(method, data_root, tmp_path):  # noqa: F811
    config, extra = CONFIGS[method]
    options = [f'{split}_dataloader.dataset.data_root={data_root}' for split in ('train', 'val', 'test')]
    options += [f'test_dataloader.dataset.indices={TEST_IMAGES}', 'train_dataloader.batch_size=16', *extra]
    (tmp_path / 'one').mkdir(), (tmp_path / 'two').mkdir()
    single = run_test(config, options, tmp_path / 'one', 1)
    distributed = run_test(config, options, tmp_path / 'two', 2)
    assert abs(single - distributed) <= 100 / TEST_IMAGES + 1e-6
    ranks = [torch.load(tmp_path / 'two' / f'state_rank{r}.pth', weights_only=True) for r in (0, 1)]
    assert ranks[0].keys() == ranks[1].keys()
    differ = [k for k in ranks[0] if not torch.equal(ranks[0][k], ranks[1][k])]
    assert not differ, f'ranks disagree on {differ[:5]}'
    alone = torch.load(tmp_path / 'one' / 'state_rank0.pth', weights_only=True)
    quantizer = [k for k in alone if k.endswith(('.scale', '.bits'))]
    assert quantizer and all(torch.allclose(alone[k].float(), ranks[0][k].float(), rtol=1e-4) for k in quantizer)
