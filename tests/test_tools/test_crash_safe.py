"""A preparation or a checkpoint save killed half-way leaves nothing a later run takes as complete; "up to date"
means complete and built with the same settings, not merely present."""
import json
import os

import pytest

from mmvitq.datasets import (build_scenes, load_fashion_mnist, prepare_fashion_mnist, scene_settings,
                             scenes_up_to_date)
from mmvitq.datasets import scenes as scenes_module
from mmvitq.utils import load_checkpoint_file


class Killed(BaseException):
    """Stands for the process being killed (not an Exception: nothing may catch it)."""


@pytest.fixture(scope='module')
def fmnist(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('fmnist'))
    prepare_fashion_mnist(root)
    return root


def test_scene_build_killed_half_way_is_not_taken_for_done(fmnist, tmp_path, monkeypatch):
    items, labels, classes = load_fashion_mnist(fmnist, 'test')
    out, settings = str(tmp_path / 'scenes'), scene_settings(8, 'test', canvas=64, seed=1)
    build_scenes(items, labels, classes, 8, out, 'val', canvas=64, seed=1, source='test')
    assert scenes_up_to_date(out, 'val', settings)
    writes = []
    real_imwrite = scenes_module.cv2.imwrite

    def dies_on_the_fourth_image(path, image):
        writes.append(path)
        if len(writes) == 4:
            raise Killed
        return real_imwrite(path, image)

    with monkeypatch.context() as m:  # a rebuild (other seed) killed half-way through its images
        m.setattr(scenes_module.cv2, 'imwrite', dies_on_the_fourth_image)
        with pytest.raises(Killed):
            build_scenes(items, labels, classes, 8, out, 'val', canvas=64, seed=2, source='test')
    assert not os.path.exists(os.path.join(out, 'annotations', 'val.json'))  # the old set is gone first
    assert not scenes_up_to_date(out, 'val', settings)
    assert not scenes_up_to_date(out, 'val', scene_settings(8, 'test', canvas=64, seed=2))

    with monkeypatch.context() as m:  # killed while writing the annotation file itself
        m.setattr(scenes_module, 'write_json', lambda path, data: _die_writing(path, data))
        with pytest.raises(Killed):
            build_scenes(items, labels, classes, 8, out, 'val', canvas=64, seed=1, source='test')
    assert not scenes_up_to_date(out, 'val', settings)

    build_scenes(items, labels, classes, 8, out, 'val', canvas=64, seed=1, source='test')
    assert scenes_up_to_date(out, 'val', settings)
    assert not scenes_up_to_date(out, 'val', scene_settings(9, 'test', canvas=64, seed=1))  # other settings
    os.remove(os.path.join(out, 'val', '000003.png'))
    assert not scenes_up_to_date(out, 'val', settings)  # an image missing


def _die_writing(path, data):
    from mmvitq.utils import atomic_path
    with atomic_path(path) as tmp, open(tmp, 'w') as f:
        f.write(json.dumps(data)[:100])
        raise Killed


def test_truncated_fashion_mnist_file_is_unpacked_again(fmnist, tmp_path):
    out = str(tmp_path / 'f')
    prepare_fashion_mnist(out)
    path = os.path.join(out, 't10k-images-idx3-ubyte')
    size = os.path.getsize(path)
    with open(path, 'r+b') as f:
        f.truncate(size // 2)
    assert prepare_fashion_mnist(out) == [path] and os.path.getsize(path) == size


def test_checkpoint_save_killed_half_way_leaves_no_file(tmp_path, monkeypatch):
    """A calibrated checkpoint's save dies mid-write: the final name never appears, a complete one stays intact."""
    from mmengine.fileio.backends import LocalBackend
    from test_models.test_checkpoint import make_runner

    runner = make_runner(tmp_path)
    runner.save_checkpoint(str(tmp_path), 'ptq_w4a4.pth', save_optimizer=False, save_param_scheduler=False)
    complete = (tmp_path / 'ptq_w4a4.pth').read_bytes()

    def half_then_killed(self, obj, filepath):
        with open(filepath, 'wb') as f:
            f.write(obj[:len(obj) // 2])
        raise Killed

    monkeypatch.setattr(LocalBackend, 'put', half_then_killed)
    for name in ('ptq_w4a4.pth', 'gplq_w4a4.pth'):  # over a complete file, and a first save
        with pytest.raises(Killed):
            runner.save_checkpoint(str(tmp_path), name, save_optimizer=False, save_param_scheduler=False)
    assert (tmp_path / 'ptq_w4a4.pth').read_bytes() == complete
    assert not (tmp_path / 'gplq_w4a4.pth').exists()
    assert not [p for p in os.listdir(tmp_path) if '.tmp-' in p]
    assert load_checkpoint_file(str(tmp_path / 'ptq_w4a4.pth'))['state_dict']


def test_temporary_files_of_killed_writers_are_removed(tmp_path):
    """A writer killed by SIGKILL leaves its hidden temporary file; the next write of that path removes it."""
    import subprocess

    from mmvitq.utils import write_json
    dead = subprocess.Popen(['true'])
    dead.wait()
    left = tmp_path / f'.report.tmp-{dead.pid}.json'
    alive = tmp_path / f'.report.tmp-{os.getppid()}.json'
    left.write_text('{"half')
    alive.write_text('{"being written')
    write_json(str(tmp_path / 'report.json'), dict(done=True))
    assert json.loads((tmp_path / 'report.json').read_text()) == dict(done=True)
    assert not left.exists() and alive.exists()
