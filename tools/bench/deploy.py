"""Deploy cost, measured side by side: bytes on disk, onnxruntime latency and peak memory of quantized ViTs.

    python tools/bench/deploy.py [--models fmnist deit-s] [--threads 2] [--out results/deploy.json]

Models: the Fashion-MNIST ViT (the committed float checkpoint, 28x28) and a DeiT-S-sized ViT (mmpretrain's
`deit-small` arch, 22 M parameters, 224x224) with random weights. Quantizers are calibrated on random images:
sizes and speed do not depend on the values, and no accuracy is measured here (see the parity tests and the
README's deploy table for that). For each model:
- bytes on disk: the fp32 checkpoint, packed checkpoints (W8, W4: tools/publish_model.py --pack), and ONNX files
  (fp32, W8A8, W4A8, W4 weights only, W4A4);
- latency at batch 1 and 32 (median and p90, `--threads` intra-op threads, each configuration in its own
  process) and peak memory (RSS while the model loads and runs, also above the RSS before it): onnxruntime
  fp32, W8A8 on its integer kernels, W4 weights (MatMulNBits, float inputs and int8 inputs: accuracy_level 0
  and 4), W4A8 and W4A4 (QDQ simulated), and PyTorch: fp32 eager and our fake-quant model (W8A8, W4A4);
- which kernel each matmul runs on (integer or float), and the CPU's instruction-set extensions.
Prints a table with each latency as a ratio to onnxruntime fp32 and writes JSON.
"""
import argparse
import json
import os
import os.path as osp
import platform
import statistics
import subprocess
import sys
import threading
import time

import torch
from mmengine.registry import init_default_scope
from mmpretrain.registry import MODELS

import mmvitq  # noqa: F401  (registers QuantVisionTransformer)
from mmvitq.deploy import export_onnx
from mmvitq.deploy.pack import pack_state_dict
from mmvitq.deploy.runtime import cpu_features, kernel_report, session
from mmvitq.deploy.targets import ClassifierLogits
from mmvitq.models.checkpoint import load_float_checkpoint
from mmvitq.quantizers import calibration
from mmvitq.utils import write_json, write_text

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
FMNIST = dict(arch=dict(embed_dims=96, num_layers=6, num_heads=3, feedforward_channels=384), img_size=28,
              patch_size=4, in_channels=1, num_classes=10,
              checkpoint='checkpoints/deit-tiny-p4_fashion-mnist-c4de163e.pth')
MODELS_ = {'fmnist': FMNIST, 'deit-s': dict(arch='deit-small', img_size=224, patch_size=16, in_channels=3,
                                            num_classes=1000, checkpoint=None)}
#: variant -> qconfig (None: float)
VARIANTS = {
    'fp32': None,
    'W8A8': dict(w_bits=8, a_bits=8),
    'W4A8': dict(w_bits=4, a_bits=8),
    'W4 weights': dict(w_bits=4, points=('weight', )),
    'W4A4': dict(w_bits=4, a_bits=4),
}
#: latency rows: (name, runtime, variant, MatMulNBits accuracy level)
ROWS = [('onnxruntime fp32', 'onnx', 'fp32', 0), ('onnxruntime W8A8 (integer kernels)', 'onnx', 'W8A8', 0),
        ('onnxruntime W4 weights (MatMulNBits, float inputs)', 'onnx', 'W4 weights', 0),
        ('onnxruntime W4 weights (MatMulNBits, int8 inputs)', 'onnx', 'W4 weights', 4),
        ('onnxruntime W4A8 (QDQ)', 'onnx', 'W4A8', 0), ('onnxruntime W4A4 (QDQ)', 'onnx', 'W4A4', 0),
        ('PyTorch fp32 eager', 'torch', 'fp32', 0), ('PyTorch fake-quant W8A8', 'torch', 'W8A8', 0),
        ('PyTorch fake-quant W4A4', 'torch', 'W4A4', 0)]


def build(spec: dict, qconfig) -> torch.nn.Module:
    """The classifier of `spec`, float or with a quantized backbone."""
    init_default_scope('mmpretrain')
    backbone = dict(type='VisionTransformer' if qconfig is None else 'QuantVisionTransformer', arch=spec['arch'],
                    img_size=spec['img_size'], patch_size=spec['patch_size'], in_channels=spec['in_channels'],
                    drop_rate=0.0)
    if qconfig is not None:
        backbone['qconfig'] = qconfig
    model = MODELS.build(dict(type='ImageClassifier', backbone=backbone, neck=None,
                              head=dict(type='VisionTransformerClsHead', num_classes=spec['num_classes'],
                                        in_channels=_width(spec))))
    return model.eval()


def _width(spec: dict) -> int:
    return spec['arch']['embed_dims'] if isinstance(spec['arch'], dict) else 384


def images(spec: dict, batch: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(batch, spec['in_channels'], spec['img_size'], spec['img_size'],
                       generator=torch.Generator().manual_seed(seed))


def prepare(name: str, work_dir: str) -> dict:
    """Build, calibrate, save and export every variant of model `name`; returns the sizes and file paths."""
    spec = MODELS_[name]
    torch.manual_seed(0)
    float_state = build(spec, None).state_dict()
    if spec['checkpoint']:
        model = build(spec, None)
        load_float_checkpoint(osp.join(ROOT, spec['checkpoint']), model)
        float_state = model.state_dict()
    files, sizes = {}, {}
    for variant, qconfig in VARIANTS.items():
        model = build(spec, qconfig)
        model.load_state_dict(float_state, strict=False)
        if qconfig is not None:
            with torch.no_grad(), calibration(model):
                model(images(spec, 8, seed=1), mode='tensor')
        state = osp.join(work_dir, f'{name}_{variant.replace(" ", "_")}.pth')
        torch.save(model.state_dict(), state)
        path = osp.join(work_dir, f'{name}_{variant.replace(" ", "_")}.onnx')
        example = (images(spec, 2), )
        if qconfig is None:
            torch.onnx.export(ClassifierLogits(model).eval(), example, path, dynamo=True, opset_version=21,
                              dynamic_shapes=({0: torch.export.Dim('batch')}, ), input_names=['input'],
                              output_names=['logits'], external_data=False, verbose=False)
            sizes['checkpoint fp32'] = osp.getsize(state)
        else:
            export_onnx(ClassifierLogits(model), example, path, ['input'], ['logits'])
        if variant in ('W8A8', 'W4A4'):
            packed = osp.join(work_dir, f'{name}_{variant}_packed.pth')
            torch.save(pack_state_dict(model), packed)
            sizes[f'checkpoint packed W{variant[1]}'] = osp.getsize(packed)
        sizes[f'ONNX {variant}'] = osp.getsize(path)
        files[variant] = dict(onnx=path, state=state)
    return dict(sizes=sizes, files=files)


def _rss_mib() -> float:
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE') / 2**20


def measure(runtime: str, spec: dict, variant: str, files: dict, batch: int, threads: int, runs: int,
            level: int) -> dict:
    """Latency of one configuration (in this process): median and p90 over `runs` calls (ms); the peak RSS while
    the model loads and runs, sampled every millisecond, and that peak above the RSS before (MiB: the libraries
    imported before are left out)."""
    start_rss, peak, done = _rss_mib(), [0.0], threading.Event()

    def sample() -> None:
        while not done.wait(0.001):
            peak[0] = max(peak[0], _rss_mib())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    x = images(spec, batch)
    if runtime == 'onnx':
        run = session(files[variant]['onnx'], True, threads, nbits_accuracy_level=level)
        feed = {'input': x.numpy()}
        call = lambda: run.run(None, feed)  # noqa: E731
    else:
        torch.set_num_threads(threads)
        model = build(spec, VARIANTS[variant])
        model.load_state_dict(torch.load(files[variant]['state'], weights_only=True))
        call = lambda: model(x, mode='tensor')  # noqa: E731
    with torch.no_grad():
        for _ in range(2):
            call()
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            call()
            times.append((time.perf_counter() - start) * 1e3)
    done.set()
    sampler.join()
    times.sort()
    return dict(median_ms=statistics.median(times), p90_ms=times[min(len(times) - 1, int(0.9 * len(times)))],
                peak_rss_mib=peak[0], model_rss_mib=peak[0] - start_rss)


def run_worker(args: list[str]) -> dict:
    """One configuration in its own process, so that its peak memory is its own."""
    proc = subprocess.run([sys.executable, __file__, '--worker', *args], capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(f'worker {args} failed: {proc.stderr[-2000:]}')
    return json.loads(proc.stdout.strip().splitlines()[-1])


def table(results: dict) -> str:
    lines = []
    for name, result in results['models'].items():
        base = {b: result['latency']['onnxruntime fp32'][str(b)]['median_ms'] for b in (1, 32)}
        lines += [f'### {name}', '', '| file | bytes | vs fp32 checkpoint |', '|---|---|---|']
        fp32 = result['sizes']['checkpoint fp32']
        lines += [f'| {k} | {v:,} | {v / fp32:.3f} |' for k, v in result['sizes'].items()]
        lines += ['', '| run | batch 1: median / p90 (ms) | vs ort fp32 | batch 32: median / p90 (ms) | vs ort fp32 '
                  '| peak RSS b32 (MiB): process / above its start |', '|---|---|---|---|---|---|']
        for row, by_batch in result['latency'].items():
            cells = [f"{by_batch[str(b)]['median_ms']:.1f} / {by_batch[str(b)]['p90_ms']:.1f} | "
                     f"{base[b] / by_batch[str(b)]['median_ms']:.2f}x" for b in (1, 32)]
            memory = by_batch['32']
            lines.append(f"| {row} | {cells[0]} | {cells[1]} | {memory['peak_rss_mib']:.0f} / "
                         f"{memory['model_rss_mib']:.0f} |")
        lines += ['', '| ONNX | matmuls/convs on integer kernels | on packed low-bit weights | kernels |',
                  '|---|---|---|---|']
        for variant, kernels in result['kernels'].items():
            counts = ', '.join(f'{k} x{n}' for k, n in sorted(kernels['counts'].items()))
            lines.append(f"| {variant} | {kernels['integer']}/{kernels['total']} | {kernels['nbits']} | {counts} |")
        lines.append('')
    return '\n'.join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--models', nargs='+', default=list(MODELS_), choices=list(MODELS_))
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--runs', type=int, nargs=2, default=(30, 8), metavar=('BATCH1', 'BATCH32'),
                        help='timed calls at batch 1 and at batch 32')
    parser.add_argument('--work-dir', default='work_dirs/bench_deploy')
    parser.add_argument('--out', default='results/deploy.json')
    parser.add_argument('--worker', nargs=7, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        runtime, name, variant, files, batch, runs, level = args.worker
        with open(files) as f:
            paths = json.load(f)
        print(json.dumps(measure(runtime, MODELS_[name], variant, paths, int(batch), args.threads, int(runs),
                                 int(level))))
        return
    os.makedirs(args.work_dir, exist_ok=True)
    import onnxruntime
    results = dict(threads=args.threads, cpu=platform.processor() or platform.machine(), cpu_features=cpu_features(),
                   torch=torch.__version__, onnxruntime=onnxruntime.__version__, models={})
    for name in args.models:
        prepared = prepare(name, args.work_dir)
        files = osp.join(args.work_dir, f'{name}_files.json')
        write_json(files, prepared['files'])
        latency = {}
        for row, runtime, variant, level in ROWS:
            latency[row] = {str(b): run_worker([runtime, name, variant, files, str(b), str(runs), str(level)])
                            for b, runs in zip((1, 32), args.runs)}
            print(f'[deploy] {name} {row}: ' + ', '.join(f"batch {b} {v['median_ms']:.1f} ms"
                                                          for b, v in latency[row].items()), flush=True)
        kernels = {v: kernel_report(p['onnx'], args.threads) for v, p in prepared['files'].items()}
        results['models'][name] = dict(sizes=prepared['sizes'], latency=latency, kernels=kernels)
    report = table(results)
    print(report)
    write_json(args.out, results, indent=1)
    write_text(osp.splitext(args.out)[0] + '.md', report + '\n')


if __name__ == '__main__':
    main()
