"""The CUDA kernels compile with nvcc for one architecture (no GPU needed), so a broken kernel fails CI."""
import glob
import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CUDA_HOME = os.environ.get('CUDA_HOME', '/usr/local/cuda')


@pytest.mark.skipif(not os.path.exists(os.path.join(CUDA_HOME, 'bin', 'nvcc')) and not shutil.which('nvcc'),
                    reason='nvcc is not installed')
def test_cuda_extension_builds_and_imports(tmp_path):
    env = dict(os.environ, FORCE_CUDA='1', TORCH_CUDA_ARCH_LIST=os.environ.get('TORCH_CUDA_ARCH_LIST', '9.0'),
               MAX_JOBS=os.environ.get('MAX_JOBS', '2'), CUDA_HOME=CUDA_HOME)
    build = subprocess.run([
        sys.executable, 'setup.py', 'build_ext', '--build-temp', str(tmp_path / 'temp'), '--build-lib',
        str(tmp_path / 'lib')
    ], cwd=ROOT, env=env, capture_output=True, text=True)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    assert any(s.endswith('fake_quant_cuda.cu') for s in build.stdout.split()), 'the .cu file was not compiled'
    (so, ) = glob.glob(str(tmp_path / 'lib' / 'mmvitq' / '_ext*.so'))
    probe = ('import importlib.util, torch; '
             f'spec = importlib.util.spec_from_file_location("mmvitq._ext", {so!r}); '
             'm = importlib.util.module_from_spec(spec); spec.loader.exec_module(m); '
             'assert m.compiled_with_cuda(); print("ok")')
    run = subprocess.run([sys.executable, '-c', probe], capture_output=True, text=True)
    assert run.stdout.strip() == 'ok', run.stderr[-3000:]
