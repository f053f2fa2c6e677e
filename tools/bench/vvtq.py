"""Variation-aware QAT on the Fashion-MNIST ViT, in one run: W2A2 and W4A4, each with and without the oscillation
regulariser and with and without multi-crop distillation (accuracy, oscillation rate, wall time), the plain
LSQ QAT and GPLQ baselines at the same bits, and the regulariser's time vectorised against a per-bin loop.

    python tools/bench/vvtq.py [--bits 2 4] [--epochs N] [--reg-weights W ...] [--skip-baselines] [--skip-runs]
                               [--work-dir work_dirs/bench_vvtq] [--out-dir results] [--cfg-options ...]

Every training row is a tools/train.py process from the committed float ViT, its last validation top-1 on the
full test set, its wall time (label bank already built; the first run builds it) and the model's oscillation
rate (EMA of the fraction of integer weights that reverse their last change per iteration, %), its mean over the
second half of training and its value at the end:
- VVTQ: configs/vvtq/vvtq_deit-tiny-p4_{b}w{b}a_fashion-mnist.py as committed (regulariser + distillation);
- no regulariser: model.regularizer=None;
- no distillation: the float config's training data (hard labels, flips) instead of the label bank;
- neither: LSQ with VVTQ's module-dependent quantizers only;
- `--reg-weights`: VVTQ again with each of these final regulariser weights instead of the published 0.01, to show
  how oscillation and accuracy answer to the regulariser's strength;
- baselines: plain LSQ QAT (configs/qat/lsq_...: per-channel activations as GPLQ's, task loss) for the
  same epochs, and GPLQ (one epoch + weight PTQ), at b bits.
`--epochs` shortens every schedule (default: each config's own). Writes vvtq_<bits>.json, vvtq_<bits>.md and
vvtq_<bits>_oscillation.png (oscillation rate over training, per run) into --out-dir, e.g. vvtq_w2-w4.json.
"""
import argparse
import json
import os
import os.path as osp
import re
import sys
import time

import torch
from mmengine.config import Config

from mmvitq.utils import run_measured, write_json, write_text

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
VVTQ = 'configs/vvtq/vvtq_deit-tiny-p4_{b}w{b}a_fashion-mnist.py'
FLOAT = 'configs/fp/deit-tiny-p4_fashion-mnist.py'
FLOAT_CHECKPOINT = 'checkpoints/deit-tiny-p4_fashion-mnist-c4de163e.pth'
LSQ = 'configs/qat/lsq_deit-tiny-p4_4w4a_fashion-mnist.py'
GPLQ = 'configs/gplq/gplq_deit-tiny-p4_4w4a_fashion-mnist.py'
ITERS_PER_EPOCH = 469  # 60000 images at batch 128
VAL = re.compile(r'Iter\(val\) \[\d+/\d+\]\s+accuracy/top1: ([\d.]+)')


def variant_config(bits: int, distill: bool, work_dir: str) -> str:
    """The VVTQ config at `bits`; without distillation, written out with the float config's training data."""
    config = VVTQ.format(b=bits)
    if distill:
        return config
    cfg = Config.fromfile(osp.join(ROOT, config))
    cfg.train_dataloader = Config.fromfile(osp.join(ROOT, FLOAT)).train_dataloader
    path = osp.join(work_dir, f'vvtq_{bits}w{bits}a_no-distill.py')
    os.makedirs(work_dir, exist_ok=True)
    cfg.dump(path)
    return path


def train(name: str, config: str, work_dir: str, options: list[str]) -> dict:
    """One tools/train.py run: last validation top-1, wall seconds, oscillation rate and its history.

    The row is kept in `work_dir`/row.json, so a rerun of the benchmark after a kill skips the finished runs."""
    os.makedirs(work_dir, exist_ok=True)
    saved = osp.join(work_dir, 'row.json')
    cmd = [sys.executable, 'tools/train.py', config, '--work-dir', work_dir]
    cmd += ['--cfg-options', *options] if options else []
    if osp.exists(saved):
        with open(saved) as f:
            row = json.load(f)
        if row.pop('cmd') == cmd[1:]:
            print(f'[bench] {name}: finished earlier, from {saved}', flush=True)
            return row
    log = osp.join(work_dir, 'train.log')
    seconds, _ = run_measured(cmd, log, cwd=ROOT)
    with open(log) as f:
        tops = VAL.findall(f.read())
    row = dict(run=name, top1=float(tops[-1]), seconds=seconds)
    report = osp.join(work_dir, 'oscillation.json')
    if osp.exists(report):
        with open(report) as f:
            report = json.load(f)
        late = [rate for it, rate in report['history'] if it > report['history'][-1][0] / 2]
        row.update(osc_rate=report['model_rate'], osc_second_half=sum(late) / max(len(late), 1),
                   osc_history=report['history'])
    print(f'[bench] {name}: top-1 {row["top1"]:.2f}%  {seconds:.0f} s'
          + (f'  oscillation {row["osc_rate"]:.3f}%' if 'osc_rate' in row else ''), flush=True)
    write_json(saved, dict(row, cmd=cmd[1:]))
    return row


def schedule(epochs: 'float | None') -> list[str]:
    if epochs is None:
        return []
    iters = max(int(round(epochs * ITERS_PER_EPOCH)), 1)
    return [f'train_cfg.max_iters={iters}', f'param_scheduler.0.end={iters}',
            f'train_cfg.val_interval={min(iters, ITERS_PER_EPOCH)}']


def regularizer_time(bits: int, repeats: int = 5) -> dict:
    """Forward + backward seconds of the regulariser over the ViT's quantized weights: vectorised vs per-bin loop."""
    from mmengine.registry import DefaultScope
    from mmvitq.methods.vvtq import bin_variance_loop, oscillation_regularizer
    from mmvitq.methods.vvtq.model import VVTQ as Model
    from mmvitq.quantizers import calibration

    cfg = Config.fromfile(osp.join(ROOT, VVTQ.format(b=bits)))
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = Model(**{k: v for k, v in cfg.model.items() if k != 'type'},
                      data_preprocessor=cfg.data_preprocessor)
    model.init_weights()
    weights = model.quantized_weights()
    with torch.no_grad(), calibration(model, [q for _, q in weights]):
        for weight, quantizer in weights:
            quantizer(weight)
    result = {}
    for name, variance in (('vectorised', None), ('loop', bin_variance_loop)):
        kwargs = {} if variance is None else dict(variance=variance)
        start = time.perf_counter()
        for _ in range(repeats):
            model.zero_grad()
            oscillation_regularizer(weights, **kwargs).backward()
        result[name] = (time.perf_counter() - start) / repeats
    result['speedup'] = result['loop'] / result['vectorised']
    print(f'[bench] regulariser W{bits}: vectorised {1e3 * result["vectorised"]:.1f} ms, per-bin loop '
          f'{1e3 * result["loop"]:.1f} ms ({result["speedup"]:.1f}x)', flush=True)
    return result


def plot_oscillation_runs(rows: list[dict], path: str) -> None:
    from mmvitq.methods.vvtq.report import plot_oscillation
    runs = {r['run']: [tuple(p) for p in r['osc_history']] for r in rows if r.get('osc_history')}
    plot_oscillation(runs, path, title='Fashion-MNIST ViT: weight oscillation per run')


def main() -> None:
    parser = argparse.ArgumentParser(description='VVTQ ablations, baselines and the regulariser time')
    parser.add_argument('--bits', type=int, nargs='+', default=[2, 4])
    parser.add_argument('--epochs', type=float, help='training epochs of every run (default: each config\'s own)')
    parser.add_argument('--reg-weights', type=float, nargs='*', default=[],
                        help='extra VVTQ runs with these final regulariser weights (published: 0.01)')
    parser.add_argument('--skip-baselines', action='store_true', help='no plain LSQ QAT and GPLQ rows')
    parser.add_argument('--skip-runs', action='store_true', help='only the regulariser timing')
    parser.add_argument('--work-dir', default='work_dirs/bench_vvtq')
    parser.add_argument('--out-dir', default='results')
    parser.add_argument('--cfg-options', nargs='+', default=[], help='passed to every VVTQ run, e.g. a data subset')
    args = parser.parse_args()
    os.makedirs(args.out_dir, exist_ok=True)
    result = dict(regularizer_time={b: regularizer_time(b) for b in args.bits}, runs=[])
    for bits in [] if args.skip_runs else args.bits:
        # (distillation, regulariser: 'recipe' as configured, None off, or a final weight); the sweep comes
        # right after the recipe's pair, the runs without distillation last.
        variants = [(True, 'recipe'), (True, None), *[(True, w) for w in args.reg_weights], (False, 'recipe'),
                    (False, None)]
        for distill, reg in variants:
            if reg == 'recipe':
                label, suffix, options = '', '', []
            elif reg is None:
                label, suffix, options = ' -reg', '_noreg', ['model.regularizer=None']
            else:
                label, suffix = f', regulariser weight {reg:g}', f'_reg{reg:g}'
                options = [f'model.regularizer.weight={reg}']
            name = f'W{bits}A{bits} VVTQ{label}' + ('' if distill else ' -distill')
            work_dir = osp.join(args.work_dir, f'w{bits}{suffix}' + ('' if distill else '_nokd'))
            row = train(name, variant_config(bits, distill, work_dir), work_dir,
                        schedule(args.epochs) + options + args.cfg_options)
            result['runs'].append(dict(row, bits=bits, regularizer=reg, distill=distill))
        if not args.skip_baselines:
            epochs = args.epochs or Config.fromfile(osp.join(ROOT, VVTQ.format(b=bits))).train_cfg.max_iters \
                / ITERS_PER_EPOCH
            quant = [f'model.qconfig.w_bits={bits}', f'model.qconfig.a_bits={bits}']
            lsq = train(f'W{bits}A{bits} plain LSQ QAT', LSQ, osp.join(args.work_dir, f'lsq{bits}'),
                        quant + [f'train_cfg.max_iters={max(int(round(epochs)), 1) * ITERS_PER_EPOCH}',
                                f'train_cfg.val_interval={ITERS_PER_EPOCH}'])
            gplq = train(f'W{bits}A{bits} GPLQ', GPLQ, osp.join(args.work_dir, f'gplq{bits}'), quant)
            result['runs'] += [dict(lsq, bits=bits, baseline='lsq'), dict(gplq, bits=bits, baseline='gplq')]
    out = 'vvtq_' + '-'.join(f'w{b}' for b in args.bits)  # one name per bit set: runs at other bits keep theirs
    write_json(osp.join(args.out_dir, f'{out}.json'), result, indent=2)
    lines = ['| run | top-1 (%) | oscillation, mean over the 2nd half (%) | at the end (%) | wall time (s) |',
             '|---|---|---|---|---|']
    lines += [f'| {r["run"]} | {r["top1"]:.2f} | {r["osc_second_half"]:.4f} | {r["osc_rate"]:.3f} | '
              f'{r["seconds"]:.0f} |' if 'osc_rate' in r else f'| {r["run"]} | {r["top1"]:.2f} | - | - | '
              f'{r["seconds"]:.0f} |' for r in result['runs']]
    lines += ['', '| bits | regulariser, vectorised (ms) | per-bin loop (ms) | speed-up |', '|---|---|---|---|']
    lines += [f'| W{b} | {1e3 * t["vectorised"]:.1f} | {1e3 * t["loop"]:.1f} | {t["speedup"]:.1f}x |'
              for b, t in result['regularizer_time'].items()]
    write_text(osp.join(args.out_dir, f'{out}.md'), '\n'.join(lines) + '\n')
    print('\n'.join(lines))
    if result['runs']:
        plot_oscillation_runs(result['runs'], osp.join(args.out_dir, f'{out}_oscillation.png'))
    print(f'[bench] wrote {args.out_dir}/{out}.json, {out}.md' + (f', {out}_oscillation.png' if result['runs'] else ''))


if __name__ == '__main__':
    main()
