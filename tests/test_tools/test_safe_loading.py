"""A checkpoint whose unpickling would run code is refused through every loading path, with mmvitq imported; the
opt-in loads it with a warning naming the file; broken files fail naming their path and size."""
import os
import subprocess
import sys
import warnings

import pytest
import torch
from mmengine.registry import DefaultScope
from mmengine.runner import CheckpointLoader

import mmvitq  # noqa: F401  (what every config imports; must not weaken any loader)
from mmvitq.methods.gplq import GPLQ
from mmvitq.methods.vvtq import VVTQ
from mmvitq.utils import CheckpointError, load_checkpoint_file

from test_methods.test_vvtq import PREPROCESSOR, TinyImages
from test_methods.tiny_vit import ARCH, save_float_checkpoint
from test_models.test_checkpoint import make_runner
from .test_train_test import CONFIG, ROOT, data_root  # noqa: F401  (data_root is a fixture)

sys.path.insert(0, os.path.join(ROOT, 'tools'))
from publish_model import publish  # noqa: E402


class Payload:
    """Unpickling this runs `exec`, which writes the marker file: what a malicious checkpoint does."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return exec, (f"open({self.marker!r}, 'w').write('the payload ran')", )


@pytest.fixture
def evil(tmp_path):
    """(a checkpoint with real weights and a payload in its meta, the marker the payload would write)."""
    marker = str(tmp_path / 'payload_ran')
    path = tmp_path / 'evil.pth'
    weights = torch.load(save_float_checkpoint(tmp_path / 'float.pth'), weights_only=True)['state_dict']
    torch.save({'state_dict': weights, 'meta': {'note': Payload(marker)}}, path)
    return str(path), marker


def refused(load, marker):
    with pytest.raises(Exception) as info:
        load()
    assert not os.path.exists(marker), 'the payload ran'
    return str(info.value)


def test_every_in_process_loading_path_refuses_the_payload(evil, tmp_path):
    path, marker = evil
    assert 'was refused' in refused(lambda: load_checkpoint_file(path), marker)
    # mmengine's own loader with mmvitq imported (mmvitq once re-registered it with weights_only=False).
    refused(lambda: CheckpointLoader.load_checkpoint(path, map_location='cpu'), marker)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        from mmpretrain.registry import MODELS
        backbone = dict(ARCH['backbone'], type='QuantVisionTransformer', qconfig=dict(w_bits=4, a_bits=4),
                        init_cfg=dict(type='Pretrained', checkpoint=path))
        refused(lambda: MODELS.build(dict(ARCH, backbone=backbone)).init_weights(), marker)  # init_cfg
        gplq = GPLQ(ARCH, teacher_checkpoint=path, qconfig=dict(w_bits=4, a_bits=4),
                    data_preprocessor=PREPROCESSOR)
        assert 'was refused' in refused(gplq.init_weights, marker)  # GPLQ's teacher
        vvtq = VVTQ(ARCH, qconfig=dict(w_bits=4, a_bits=4), checkpoint=path, data_preprocessor=PREPROCESSOR)
        assert 'was refused' in refused(vvtq.init_weights, marker)  # VVTQ's float checkpoint
        from mmvitq.methods.vvtq import LabelBankDataset
        assert 'was refused' in refused(lambda: LabelBankDataset(  # the label bank's teacher
            TinyImages(), pipeline=[dict(type='BankedResizedCrop', size=28), dict(type='PackInputs')], teacher=ARCH,
            teacher_checkpoint=path, data_preprocessor=PREPROCESSOR, bank_root=str(tmp_path / 'banks')), marker)
    assert 'was refused' in refused(lambda: publish(path, str(tmp_path / 'published.pth')), marker)
    runner = make_runner(tmp_path / 'run')
    assert 'was refused' in refused(lambda: runner.load_checkpoint(path), marker)  # load_from
    assert 'was refused' in refused(lambda: runner.resume(path), marker)  # --resume


@pytest.mark.parametrize('tool', ('test', 'train'))
def test_tools_refuse_the_payload_and_opt_in_warns(evil, tool, data_root):  # noqa: F811
    path, marker = evil
    args = [sys.executable, f'tools/{tool}.py', CONFIG] + ([path] if tool == 'test' else ['--resume', path])
    args += ['--work-dir', os.path.dirname(path) + f'/{tool}', '--cfg-options', 'test_dataloader.dataset.indices=8',
             *[f'{split}_dataloader.dataset.data_root={data_root}' for split in ('train', 'val', 'test')]]
    proc = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode != 0 and 'was refused' in proc.stderr and not os.path.exists(marker)
    if tool == 'test':  # the opt-in runs the file's code, says so, and names the file
        proc = subprocess.run(args + ['--unsafe-load'], cwd=ROOT, capture_output=True, text=True, timeout=600)
        assert f"loading '{path}' with weights_only=False (opted in)" in proc.stderr
        assert os.path.exists(marker)


def test_opt_in_loads_and_warns(evil):
    path, marker = evil
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        checkpoint = load_checkpoint_file(path, unsafe=True)
    assert 'state_dict' in checkpoint and os.path.exists(marker)
    assert any(path in str(w.message) and 'weights_only=False' in str(w.message) for w in caught)


def test_broken_files_name_path_size_and_expectation(tmp_path):
    good = save_float_checkpoint(tmp_path / 'float.pth')
    data = open(good, 'rb').read()
    cases = {'empty.pth': b'', 'truncated.pth': data[:len(data) // 2], 'text.pth': b'not a checkpoint\n'}
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(CheckpointError) as info:
            load_checkpoint_file(str(tmp_path / name))
        message = str(info.value)
        assert str(tmp_path / name) in message and f'{len(content)} bytes' in message
        assert 'expected a file written by torch.save' in message
    with pytest.raises(CheckpointError, match='no such file'):
        load_checkpoint_file(str(tmp_path / 'missing.pth'))


def test_runner_checkpoint_needs_no_getattr_and_resumes(tmp_path):
    """What our Runner saves unpickles with only the data-only allow-list (no builtins.getattr)."""
    runner = make_runner(tmp_path)
    runner.train()
    needed = set(torch.serialization.get_unsafe_globals_in_checkpoint(str(tmp_path / 'iter_4.pth')))
    assert needed and 'builtins.getattr' not in needed
    assert all(g.startswith(('numpy.', 'mmengine.logging.history_buffer', 'mmvitq.utils.checkpoint')) for g in needed)
    checkpoint = load_checkpoint_file(str(tmp_path / 'iter_4.pth'))
    assert checkpoint['message_hub']['log_scalars']['train/loss'].current() > 0


def test_publish_refuses_to_overwrite_its_input(tmp_path):
    path = save_float_checkpoint(tmp_path / 'float.pth')
    before = open(path, 'rb').read()
    with pytest.raises(ValueError, match='is the input checkpoint'):
        publish(path, path)
    assert open(path, 'rb').read() == before
    published = publish(path, str(tmp_path / 'vit.pth'))
    assert torch.load(published, weights_only=True)['state_dict'].keys() == torch.load(path)['state_dict'].keys()
