"""LampQ on the Fashion-MNIST ViT, in one run: top-1 against average bits next to uniform precision with the same
PTQ calibration (the Pareto plot), two ablations, and the search's time against a GPLQ run on the same model.

    python tools/bench/lampq.py [--budgets 2.5 3 3.5 4 5] [--uniform 2 3 4 5 6] [--skip-gplq]
                                [--work-dir work_dirs/bench_lampq] [--out-dir results] [--cfg-options ...]

Every row is a tools/test.py (or, for GPLQ, tools/train.py) process on the committed float ViT:
- LampQ at each average budget (weights and activations), configs/lampq/lampq_deit-tiny-p4_4bit_...;
- uniform WbAb PTQ with the same calibration (percentile ranges, per-channel activations), whose patch
  embedding stays at 8 bits, so its true average is slightly above b;
- ablations at 3 bits: one round (no iterative update) and no type-aware normalisation;
- GPLQ W4A4 (both stages), the yardstick of the search time: LampQ's search must take under 5% of it.
Writes lampq.json, lampq_pareto.png and lampq_allocation.png (the 4-bit allocation) into --out-dir.
"""
import argparse
import glob
import json
import os
import os.path as osp
import shutil
import sys

from mmengine.config import Config

from mmvitq.utils import atomic_path, run_measured, write_json

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
LAMPQ = 'configs/lampq/lampq_deit-tiny-p4_4bit_fashion-mnist.py'
UNIFORM = 'configs/ptq/ptq-percentile-channel_deit-tiny-p4_4w4a_fashion-mnist.py'
GPLQ = 'configs/gplq/gplq_deit-tiny-p4_4w4a_fashion-mnist.py'


def test(config: str, checkpoint: str, work_dir: str, options: list[str]) -> dict:
    """One tools/test.py run: top-1, wall seconds and, for LampQ, its search report."""
    os.makedirs(work_dir, exist_ok=True)
    metrics = osp.join(work_dir, 'metrics.json')
    cmd = [sys.executable, 'tools/test.py', config, checkpoint, '--work-dir', work_dir, '--out', metrics]
    seconds, _ = run_measured(cmd + (['--cfg-options', *options] if options else []), osp.join(work_dir, 'run.log'),
                              cwd=ROOT)
    with open(metrics) as f:
        row = dict(top1=json.load(f)['accuracy/top1'], seconds=seconds)
    reports = glob.glob(osp.join(work_dir, 'lampq_*_allocation.json'))  # named by the budget
    if reports:
        report = reports[0]
        with open(report) as f:
            report = json.load(f)
        row.update(search_seconds=report['seconds'], weight_bits=report['average_weight_bits'],
                   act_bits=report['average_act_bits'], rounds=report['rounds'])
    print(f'[bench] {osp.basename(work_dir)}: top-1 {row["top1"]:.2f}%  {seconds:.0f} s'
          + (f'  (search {row["search_seconds"]:.1f} s)' if 'search_seconds' in row else ''), flush=True)
    return row


def plot_pareto(lampq: list[dict], uniform: list[dict], fp32: float, path: str) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6.5, 4.3))
    ax.axhline(fp32, color='k', linestyle='--', label=f'FP32 ({fp32:.2f}%)')
    ax.plot([r['budget'] for r in uniform], [r['top1'] for r in uniform], marker='s', label='uniform WbAb (PTQ)')
    ax.plot([r['budget'] for r in lampq], [r['top1'] for r in lampq], marker='o', label='LampQ (mixed, same PTQ)')
    ax.set(xlabel='average bits (weights and activations)', ylabel='top-1 (%)',
           title='Fashion-MNIST ViT: accuracy vs average bits')
    ax.legend()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description='LampQ vs uniform precision, ablations and search time')
    parser.add_argument('--budgets', type=float, nargs='+', default=[2.5, 3, 3.5, 4, 5])
    parser.add_argument('--uniform', type=int, nargs='+', default=[2, 3, 4, 5, 6])
    parser.add_argument('--skip-gplq', action='store_true', help='no GPLQ run (no search-time ratio)')
    parser.add_argument('--work-dir', default='work_dirs/bench_lampq')
    parser.add_argument('--out-dir', default='results')
    parser.add_argument('--cfg-options', nargs='+', default=[], help='passed to every run, e.g. a data subset')
    args = parser.parse_args()
    checkpoint = Config.fromfile(osp.join(ROOT, GPLQ)).model.teacher_checkpoint
    work, extra = args.work_dir, args.cfg_options

    fp32 = test('configs/fp/deit-tiny-p4_fashion-mnist.py', checkpoint, osp.join(work, 'fp32'), extra)['top1']
    uniform = [dict(budget=b, **test(UNIFORM, checkpoint, osp.join(work, f'uniform_w{b}a{b}'),
                                     [f'model.backbone.qconfig.w_bits={b}', f'model.backbone.qconfig.a_bits={b}',
                                      *extra])) for b in args.uniform]
    lampq = [dict(budget=b, **test(LAMPQ, checkpoint, osp.join(work, f'lampq_{b:g}'),
                                   [f'test_cfg.weight_bits={b}', *extra])) for b in args.budgets]
    ablations = [dict(name=name, budget=3.0, **test(LAMPQ, checkpoint, osp.join(work, f'lampq_3_{key}'),
                                                    ['test_cfg.weight_bits=3.0', option, *extra]))
                 for name, key, option in [('one round (no iterative update)', 'one-round', 'test_cfg.rounds=1'),
                                           ('no type-aware normalisation', 'raw', 'test_cfg.type_aware=False')]]
    result = dict(fp32=fp32, uniform=uniform, lampq=lampq, ablations=ablations)
    if not args.skip_gplq:
        gplq_dir = osp.join(work, 'gplq')
        os.makedirs(gplq_dir, exist_ok=True)
        cmd = [sys.executable, 'tools/train.py', GPLQ, '--work-dir', gplq_dir]
        seconds, _ = run_measured(cmd + (['--cfg-options', *extra] if extra else []),
                                  osp.join(gplq_dir, 'bench.log'), cwd=ROOT)
        searched = [r for r in lampq if r['budget'] == 4.0] or lampq
        result['gplq_seconds'] = seconds
        result['search_over_gplq'] = searched[0]['search_seconds'] / seconds
        print(f'[bench] GPLQ run {seconds:.0f} s; LampQ search at {searched[0]["budget"]:g} bits '
              f'{searched[0]["search_seconds"]:.1f} s = {100 * result["search_over_gplq"]:.1f}% of it', flush=True)

    os.makedirs(args.out_dir, exist_ok=True)
    write_json(osp.join(args.out_dir, 'lampq.json'), result, indent=2)
    plot_pareto(lampq, uniform, fp32, osp.join(args.out_dir, 'lampq_pareto.png'))
    four = [b for b in args.budgets if b == 4.0]
    if four:
        shutil.copy(osp.join(work, 'lampq_4', 'lampq_w4a4_allocation.png'),
                    osp.join(args.out_dir, 'lampq_allocation.png'))
    print('\n| run | average bits (W / A) | top-1 (%) | vs FP32 (pt) | wall time (s) | search (s) |\n'
          '|---|---|---|---|---|---|')
    print(f'| FP32 | 32 | {fp32:.2f} | +0.00 | - | - |')
    rows = ([(f'uniform PTQ W{r["budget"]}A{r["budget"]}', r) for r in uniform] + [('LampQ', r) for r in lampq]
            + [(f'LampQ, {r["name"]}', r) for r in ablations])
    for name, r in rows:
        bits = (f'{r["weight_bits"]:.2f} / {r["act_bits"]:.2f}' if 'weight_bits' in r
                else f'{r["budget"]} (+ 8-bit patch embedding)')
        search = f'{r["search_seconds"]:.1f}' if 'search_seconds' in r else '-'
        print(f'| {name} | {bits} | {r["top1"]:.2f} | {r["top1"] - fp32:+.2f} | {r["seconds"]:.0f} | {search} |')
    print(f'[bench] wrote {args.out_dir}/lampq.json, lampq_pareto.png' + (', lampq_allocation.png' if four else ''))


if __name__ == '__main__':
    main()
