"""Benchmark mmvitq's fused fake-quant kernels against torch's learnable fake-quant ops.

For ViT-S/ViT-B activation and weight shapes it times forward and forward+backward of ours
(per-tensor and per-channel LSQ), torch's `_fake_quantize_learnable_per_{tensor,channel}_affine`,
a plain PyTorch composition (our reference), and `x.clone()` as the memory-bandwidth floor. It
prints a table of medians and ratios and writes the same numbers as JSON.

    python tools/bench/fake_quant.py [--device cuda] [--shapes 64x197x384 768x768] [--out FILE]
"""
import argparse
import math
import os
import platform
import statistics
import time
from typing import Callable

import torch

from mmvitq.ops import backend, fake_quant_per_channel, fake_quant_per_tensor, quant_range, reference
from mmvitq.utils import write_json

DEFAULT_SHAPES = ('64x197x384', '64x197x768', '64x197x3072', '768x768', '3072x768')


def timeit(fn: Callable[[], object], device: torch.device, repeats: int, warmup: int = 2) -> float:
    """Median wall time of fn() in milliseconds."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        if device.type == 'cuda':
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        fn()
        if device.type == 'cuda':
            torch.cuda.synchronize(device)
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def candidates(x: torch.Tensor, bits: int) -> dict:
    """name -> (forward fn of (x, scale, zero_point), per-tensor scale, per-channel axis or None)."""
    qmin, qmax = quant_range(bits, symmetric=False)
    axis = 0 if x.dim() == 2 else x.dim() - 1  # weights: per output channel; activations: per channel
    c, inner = x.shape[axis], math.prod(x.shape[axis + 1:])
    n = x.numel()
    g_t, g_c = 1.0 / (n * qmax)**0.5, 1.0 / (n / c * qmax)**0.5
    return {
        'ours per-tensor': (lambda x, s, z: fake_quant_per_tensor(x, s, z, qmin, qmax, g_t), 1),
        'torch learnable per-tensor': (
            lambda x, s, z: torch._fake_quantize_learnable_per_tensor_affine(x, s, z, qmin, qmax, g_t), 1),
        'pytorch composition per-tensor': (
            lambda x, s, z: reference.fake_quant(x, s, z, 1, n, qmin, qmax, g_t), 1),
        'ours per-channel': (lambda x, s, z: fake_quant_per_channel(x, s, z, axis, qmin, qmax, g_c), c),
        'torch learnable per-channel': (
            lambda x, s, z: torch._fake_quantize_learnable_per_channel_affine(x, s, z, axis, qmin, qmax, g_c), c),
        'pytorch composition per-channel': (
            lambda x, s, z: reference.fake_quant(x, s, z, c, inner, qmin, qmax, g_c), c),
    }


def bench_shape(shape: tuple, device: torch.device, dtype: torch.dtype, bits: int, repeats: int) -> dict:
    x = torch.randn(shape, device=device, dtype=dtype)
    dy = torch.randn_like(x)
    rows = {'clone': {'forward_ms': timeit(lambda: x.clone(), device, repeats)}}
    for name, (fn, channels) in candidates(x, bits).items():
        if name.startswith('torch') and dtype != torch.float32:
            continue  # torch's learnable fake-quant is float32 only
        s = torch.full((channels, ), 0.05, device=device)
        z = torch.full((channels, ), 3.0, device=device)
        xg, sg, zg = x.clone().requires_grad_(), s.clone().requires_grad_(), z.clone().requires_grad_()

        def fwd_bwd():
            out = fn(xg, sg, zg)
            torch.autograd.backward(out, dy)
            xg.grad = sg.grad = zg.grad = None

        with torch.no_grad():
            fwd = timeit(lambda: fn(x, s, z), device, repeats)
        rows[name] = {'forward_ms': fwd, 'forward_backward_ms': timeit(fwd_bwd, device, repeats)}
    return rows


def ratios(rows: dict) -> dict:
    out = {}
    for g in ('per-tensor', 'per-channel'):
        ours = rows[f'ours {g}']
        out[f'{g}: forward / clone'] = ours['forward_ms'] / rows['clone']['forward_ms']
        torch_row = rows.get(f'torch learnable {g}')
        if torch_row:
            out[f'{g}: torch / ours, forward'] = torch_row['forward_ms'] / ours['forward_ms']
            out[f'{g}: torch / ours, forward+backward'] = torch_row['forward_backward_ms'] / ours['forward_backward_ms']
        comp = rows[f'pytorch composition {g}']
        out[f'{g}: composition / ours, forward+backward'] = comp['forward_backward_ms'] / ours['forward_backward_ms']
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--dtype', default='float32', choices=('float32', 'bfloat16', 'float16'))
    parser.add_argument('--shapes', nargs='+', default=DEFAULT_SHAPES, help='e.g. 64x197x384 768x768')
    parser.add_argument('--bits', type=int, default=4)
    parser.add_argument('--repeats', type=int, default=10)
    parser.add_argument('--out', help='JSON file (default: work_dirs/bench/fake_quant_<device>_<dtype>_w<bits>.json)')
    args = parser.parse_args()
    device, dtype = torch.device(args.device), getattr(torch, args.dtype)
    print(f'device={device} ({backend(device)} kernels) dtype={args.dtype} bits={args.bits} '
          f'threads={torch.get_num_threads()}')
    results = {'device': str(device), 'dtype': args.dtype, 'bits': args.bits, 'threads': torch.get_num_threads(),
               'torch': torch.__version__, 'machine': platform.processor() or platform.machine(), 'shapes': {}}
    for text in args.shapes:
        shape = tuple(int(d) for d in text.split('x'))
        rows = bench_shape(shape, device, dtype, args.bits, args.repeats)
        results['shapes'][text] = {'times': rows, 'ratios': ratios(rows)}
        print(f'\n{text}')
        print(f'  {"op":34s} {"fwd ms":>9s} {"fwd+bwd ms":>11s}')
        for name, r in rows.items():
            print(f'  {name:34s} {r["forward_ms"]:9.2f} {r.get("forward_backward_ms", float("nan")):11.2f}')
        for name, value in results['shapes'][text]['ratios'].items():
            print(f'  {name:44s} {value:6.2f}x')
    args.out = args.out or f'work_dirs/bench/fake_quant_{args.device}_{args.dtype}_w{args.bits}.json'
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    write_json(args.out, results, indent=2)
    print(f'\nwrote {args.out}')


if __name__ == '__main__':
    main()
