"""Build mmvitq and its fake-quantization extension (mmvitq._ext) the way mmcv builds its ops.

CPU kernels always; CUDA kernels when a GPU is visible or FORCE_CUDA=1 (TORCH_CUDA_ARCH_LIST is
honoured by torch's BuildExtension). Set MAX_JOBS to bound parallel compilation.
"""
import glob
import importlib.util
import os

from setuptools import find_packages, setup

CSRC = 'mmvitq/ops/csrc'
# /usr/local/bin/nvcc may be a wrapper script, from which torch would guess CUDA_HOME=/usr/local;
# set before torch.utils.cpp_extension is imported, which reads it once.
if 'CUDA_HOME' not in os.environ and os.path.isdir('/usr/local/cuda'):
    os.environ['CUDA_HOME'] = '/usr/local/cuda'


def read_version() -> str:
    scope: dict = {}
    with open('mmvitq/version.py') as f:
        exec(f.read(), scope)
    return scope['__version__']


def cuda_include_dirs() -> list:
    """mmcv's CUDA helper headers and the pip CUDA headers that <ATen/cuda/CUDAContext.h> needs."""
    dirs = [os.path.abspath(f'{CSRC}/common/cuda')]
    mmcv = importlib.util.find_spec('mmcv')
    if mmcv is None or not os.path.isdir(os.path.join(mmcv.submodule_search_locations[0], 'ops/csrc/common')):
        raise RuntimeError('building the CUDA ops needs an installed mmcv 2.1.0 (its csrc/common headers)')
    common = os.path.join(mmcv.submodule_search_locations[0], 'ops/csrc/common')
    dirs += [common, os.path.join(common, 'cuda')]
    nvidia = importlib.util.find_spec('nvidia')
    if nvidia is not None:
        for root in nvidia.submodule_search_locations:
            dirs += sorted(glob.glob(os.path.join(root, 'cu*', 'include')))
    return dirs


def get_extensions() -> list:
    import torch
    from torch.utils.cpp_extension import CppExtension, CUDAExtension

    sources = sorted(glob.glob(f'{CSRC}/pytorch/*.cpp') + glob.glob(f'{CSRC}/pytorch/cpu/*.cpp'))
    include_dirs = [os.path.abspath(f'{CSRC}/common')]
    # -fopenmp: at::parallel_for is inline OpenMP code; -fno-trapping-math lets GCC if-convert (vectorise)
    # the NaN-preserving clamps (results are unchanged: nothing here relies on FP exceptions).
    compile_args = {'cxx': ['-O3', '-fopenmp', '-fno-trapping-math']}
    macros = []
    extension = CppExtension
    if torch.cuda.is_available() or os.getenv('FORCE_CUDA', '0') == '1':
        sources += sorted(glob.glob(f'{CSRC}/pytorch/cuda/*.cu'))
        include_dirs += cuda_include_dirs()
        macros.append(('MMVITQ_WITH_CUDA', None))
        compile_args['nvcc'] = ['-O3']
        extension = CUDAExtension
    return [extension('mmvitq._ext', sources, include_dirs=include_dirs, define_macros=macros,
                      extra_compile_args=compile_args)]


if __name__ == '__main__':
    from torch.utils.cpp_extension import BuildExtension

    setup(
        name='mmvitq',
        version=read_version(),
        description='Quantize Vision Transformers to 2-4 bits in OpenMMLab (GPLQ, LampQ, variation-aware QAT)',
        packages=find_packages(exclude=('tests', 'tests.*', 'configs', 'tools')),
        python_requires='>=3.10',
        ext_modules=get_extensions(),
        cmdclass={'build_ext': BuildExtension},
        zip_safe=False,
    )
