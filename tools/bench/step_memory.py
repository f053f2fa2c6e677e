"""Peak memory of one training step (forward + backward) on the Fashion-MNIST ViT: float fine-tuning against
GPLQ stage 1 and LSQ W4A4 QAT, each with activations saved as float copies and as compact integer codes.

    python tools/bench/step_memory.py [--device cpu|cuda] [--batch-size 128] [--out FILE]

The memory of a step, less what was allocated before it (weights, optimizer-free), is what the models keep
for backward plus the step's transient buffers; whole-process peaks (`tools/bench/gplq_cost.py`) add about
1 GiB of fixed costs (libraries, datasets, loader workers) and the allocator's own high-water marks on top.
- CUDA: torch.cuda.max_memory_allocated over the step.
- CPU: glibc's live heap bytes (mallinfo2), sampled after every aten op of the step; a buffer that lives and
  dies inside one of our C++ kernels is not seen.
Inputs are random images of the right shape (memory does not depend on pixel values); the quantizers are
initialised on them as the methods' loops and hooks do. Prints the table with each peak as a ratio to float fine-tuning
and writes JSON.
"""
import argparse
import ctypes
import os
import os.path as osp
import statistics
import time

import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample
from torch.utils._python_dispatch import TorchDispatchMode

import mmvitq  # noqa: F401  (registers GPLQ and QAT)
from mmvitq.engine.calib import observe
from mmvitq.methods.gplq.stages import fit_feature_pca
from mmvitq.models.checkpoint import load_float_checkpoint
from mmvitq.utils import write_json

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
GPLQ = 'configs/gplq/gplq_deit-tiny-p4_4w4a_fashion-mnist.py'
QAT = 'configs/qat/lsq_deit-tiny-p4_4w4a_fashion-mnist.py'


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ('arena', 'ordblks', 'smblks', 'hblks', 'hblkhd', 'usmblks', 'fsmblks', 'uordblks', 'fordblks',
                 'keepcost')]


class HeapPeak(TorchDispatchMode):
    """Peak of glibc's live heap bytes (small blocks in use + mmapped blocks) over the ops run inside it,
    relative to its value on entry."""

    def __init__(self) -> None:
        super().__init__()
        try:
            self._mallinfo = ctypes.CDLL('libc.so.6').mallinfo2
        except (OSError, AttributeError) as err:
            raise RuntimeError('step_memory: CPU peaks need glibc >= 2.33 (mallinfo2); use --device cuda') from err
        self._mallinfo.restype = _MallInfo2
        self.base = self.live()
        self.peak = 0

    def live(self) -> int:
        info = self._mallinfo()
        return info.uordblks + info.hblkhd

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        self.peak = max(self.peak, self.live() - self.base)
        return out


def build(config: str, kind: str, inputs: torch.Tensor) -> torch.nn.Module:
    """The model of `config` ready to train: 'float' its float architecture, else the method's model with its
    quantizers initialised on `inputs` (GPLQ: its activation quantizers, and the PCA basis)."""
    cfg = Config.fromfile(osp.join(ROOT, config))
    key = MODELS.get(cfg.model.type).checkpoint_arg  # the method's float-checkpoint argument
    checkpoint = osp.join(ROOT, cfg.model[key])
    if kind == 'float':
        model = MODELS.build(cfg.model.architecture)
        load_float_checkpoint(checkpoint, model)
    else:
        cfg.model.compact_activations = kind == 'compact'
        cfg.model[key] = checkpoint
        model = MODELS.build(cfg.model)
        model.init_weights()
        observe(model, [dict(inputs=inputs)])
        if getattr(model, 'feature_loss_weight', 0):
            fit_feature_pca(model, [inputs])
    return model.to(inputs.device).train()


def step(model: torch.nn.Module, inputs: torch.Tensor, samples: list) -> tuple[float, float]:
    """One forward + backward from freed gradients: (peak MiB above the memory before it, seconds)."""
    model.zero_grad(set_to_none=True)
    start = time.perf_counter()
    if inputs.is_cuda:
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        losses = model(inputs, samples, mode='loss')
        sum(v for k, v in losses.items() if 'loss' in k).backward()
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() - base
    else:
        with HeapPeak() as heap:
            losses = model(inputs, samples, mode='loss')
            sum(v for k, v in losses.items() if 'loss' in k).backward()
        peak = heap.peak
    return peak / 2**20, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description='Peak memory of one training step: float vs GPLQ vs QAT')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--batch-size', type=int, default=128)
    parser.add_argument('--repeats', type=int, default=3, help='steps per run after one warm-up step')
    parser.add_argument('--out', help='JSON file (default: results/step_memory_<device>_b<batch size>.json)')
    args = parser.parse_args()
    init_default_scope('mmpretrain')
    device = torch.device(args.device)
    generator = torch.Generator().manual_seed(0)
    inputs = torch.randn(args.batch_size, 1, 28, 28, generator=generator).to(device)
    samples = [DataSample().set_gt_label(int(label)) for label in torch.randint(0, 10, (args.batch_size, ),
                                                                                    generator=generator)]
    runs = [('float fine-tune', GPLQ, 'float'), ('GPLQ stage 1', GPLQ, 'regular'),
            ('GPLQ stage 1, compact', GPLQ, 'compact'), ('LSQ QAT', QAT, 'regular'),
            ('LSQ QAT, compact', QAT, 'compact')]
    results = {}
    for name, config, kind in runs:
        model = build(config, kind, inputs)
        step(model, inputs, samples)  # warm-up: lazily created buffers, kernel caches
        measured = [step(model, inputs, samples) for _ in range(args.repeats)]
        results[name] = dict(peak_mib=max(m[0] for m in measured), seconds=statistics.median(m[1] for m in measured))
        del model
    base = results['float fine-tune']
    print(f'\n{args.device}, batch {args.batch_size}, one forward + backward\n| run | peak step memory (MiB) | '
          'vs float fine-tune | step time (s) | vs float fine-tune |\n|---|---|---|---|---|')
    for name, r in results.items():
        r['memory_ratio'], r['time_ratio'] = r['peak_mib'] / base['peak_mib'], r['seconds'] / base['seconds']
        print(f'| {name} | {r["peak_mib"]:.0f} | {r["memory_ratio"]:.2f} | {r["seconds"]:.2f} | '
              f'{r["time_ratio"]:.2f} |')
    args.out = args.out or f'results/step_memory_{args.device}_b{args.batch_size}.json'
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    write_json(args.out, dict(device=args.device, batch_size=args.batch_size, runs=results), indent=2)
    print(f'[bench] wrote {args.out}')


if __name__ == '__main__':
    main()
