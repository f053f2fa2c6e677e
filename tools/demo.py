"""`make demo`: the float ViT on Fashion-MNIST, then every method at W8A8 and W4A4, as one table and a plot.

    python tools/demo.py [--checkpoint CKPT | --train] [--bits 8 4] [--work-dir work_dirs/demo] [--out results]

Each run is a tools/train.py or tools/test.py subprocess (its log goes to the work dir), timed on the
wall clock, with its peak resident memory read from the OS. Writes OUT/demo.md (table and the commands
behind each row), OUT/demo.json and OUT/demo.png (top-1 against bits).
"""
import argparse
import glob
import json
import os
import os.path as osp
import re
import sys

from mmvitq.utils import atomic_path, run_measured, write_json, write_text

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
FLOAT_CONFIG = 'configs/fp/deit-tiny-p4_fashion-mnist.py'
FLOAT_CHECKPOINT = 'checkpoints/deit-tiny-p4_fashion-mnist-*.pth'
DEFAULT_BITS = [8, 4]
#: (method, config, bit-widths, how it runs). 'ptq' configs test the float checkpoint with their bits set in
#: model.backbone.qconfig; 'lampq' configs test it with their average bits set in test_cfg.weight_bits (mixed
#: precision); 'train' configs (model.qconfig) start from it as the teacher, train, and their last checkpoint
#: is tested; 'vvtq' configs start from it (student and label-bank teacher), train --vvtq-iters iterations and
#: their last checkpoint is tested. Methods add rows here.
METHODS = [
    ('PTQ min-max', 'configs/ptq/ptq-minmax_deit-tiny-p4_4w4a_fashion-mnist.py', (8, 4), 'ptq'),
    ('PTQ min-max, per-channel act', 'configs/ptq/ptq-minmax-channel_deit-tiny-p4_4w4a_fashion-mnist.py', (8, 4),
     'ptq'),
    ('PTQ percentile', 'configs/ptq/ptq-percentile_deit-tiny-p4_4w4a_fashion-mnist.py', (8, 4), 'ptq'),
    ('PTQ percentile, per-channel act', 'configs/ptq/ptq-percentile-channel_deit-tiny-p4_4w4a_fashion-mnist.py',
     (8, 4), 'ptq'),
    ('PTQ MSE', 'configs/ptq/ptq-mse_deit-tiny-p4_4w4a_fashion-mnist.py', (8, 4), 'ptq'),
    ('PTQ MSE, per-channel act', 'configs/ptq/ptq-mse-channel_deit-tiny-p4_4w4a_fashion-mnist.py', (8, 4), 'ptq'),
    ('PTQ RepQ-ViT style', 'configs/ptq/ptq-repq_deit-tiny-p4_4w4a_fashion-mnist.py', (8, 4), 'ptq'),
    ('LampQ (mixed, average bits)', 'configs/lampq/lampq_deit-tiny-p4_4bit_fashion-mnist.py', (4, ), 'lampq'),
    ('GPLQ (1 epoch + PTQ)', 'configs/gplq/gplq_deit-tiny-p4_4w4a_fashion-mnist.py', (4, ), 'train'),
    ('VVTQ (1 epoch)', 'configs/vvtq/vvtq_deit-tiny-p4_4w4a_fashion-mnist.py', (4, ), 'vvtq'),
]


def run(cmd: list[str], log_file: str) -> tuple[float, float]:
    """Run `cmd` from the repo root with its output in `log_file`; returns (wall seconds, peak RSS in MiB)."""
    try:
        return run_measured(cmd, log_file, cwd=ROOT)
    except RuntimeError as e:
        sys.exit(f'demo: {e}')


def evaluate(name: str, bits: 'int | None', cmd: list[str], work_dir: str, step: str,
             train_cmd: 'list[str] | None' = None) -> dict:
    """One row: run a tools/test.py command that writes `metrics.json` into `work_dir`; with `train_cmd`,
    train first (in `work_dir`) and test the run's last checkpoint, timing and measuring both."""
    os.makedirs(work_dir, exist_ok=True)
    label = f'{name} ({"FP32" if bits is None else f"W{bits}A{bits}"})'
    print(f'[demo] {step} {label} ...', flush=True)
    seconds = peak_mib = 0.0
    if train_cmd is not None:
        seconds, peak_mib = run(train_cmd + ['--work-dir', work_dir], osp.join(work_dir, 'train.log'))
        with open(osp.join(work_dir, 'last_checkpoint')) as f:
            cmd = cmd[:3] + [f.read().strip()] + cmd[3:]  # python tools/test.py CONFIG CHECKPOINT ...
        work_dir = osp.join(work_dir, 'test')
        os.makedirs(work_dir, exist_ok=True)
    test_seconds, test_peak = run(cmd + ['--work-dir', work_dir, '--out', osp.join(work_dir, 'metrics.json')],
                                  osp.join(work_dir, 'run.log'))
    seconds, peak_mib = seconds + test_seconds, max(peak_mib, test_peak)
    with open(osp.join(work_dir, 'metrics.json')) as f:
        top1 = json.load(f)['accuracy/top1']
    print(f'[demo] {step} {label}: top-1 {top1:.2f}%  {seconds:.0f} s  {peak_mib:.0f} MiB', flush=True)
    commands = ([train_cmd] if train_cmd else []) + [cmd]
    return dict(method=name, bits=bits, top1=top1, seconds=seconds, peak_mib=peak_mib,
                command=' && '.join(' '.join(['python', *c[1:]]) for c in commands))


def train_float(work_dir: str) -> str:
    """Train the float ViT from its config (`--train`); returns the last checkpoint."""
    print(f'[demo] training the float ViT ({FLOAT_CONFIG}); log in {work_dir}/train.log', flush=True)
    os.makedirs(work_dir, exist_ok=True)
    run([sys.executable, 'tools/train.py', FLOAT_CONFIG, '--work-dir', work_dir], osp.join(work_dir, 'train.log'))
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        return f.read().strip()


def write_report(rows: list[dict], out_dir: str, name: str = 'demo') -> str:
    """Write NAME.md (table + commands), NAME.json and NAME.png (top-1 against bits); returns the table."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    os.makedirs(out_dir, exist_ok=True)
    fp32 = rows[0]['top1']
    lines = ['# mmvitq demo: DeiT-style ViT on Fashion-MNIST (10,000 test images)', '',
             '| method | bits | top-1 (%) | vs FP32 (pt) | wall time (s) | peak memory (MiB) |',
             '|---|---|---|---|---|---|']
    for r in rows:
        bits = 'FP32' if r['bits'] is None else f'W{r["bits"]}A{r["bits"]}'
        lines.append(f'| {r["method"]} | {bits} | {r["top1"]:.2f} | {r["top1"] - fp32:+.2f} | {r["seconds"]:.0f} '
                     f'| {r["peak_mib"]:.0f} |')
    table = '\n'.join(lines)
    lines += ['', 'Wall time is the whole tools/test.py process (start-up, calibration and the test pass), plus the '
              'tools/train.py process for trained methods; peak memory is the peak resident set size.', '',
              'Commands:', '']
    lines += [f'- {r["method"]}, {r["bits"] or "FP32"}: `{r["command"]}`' for r in rows]
    write_text(osp.join(out_dir, f'{name}.md'), '\n'.join(lines) + '\n')
    write_json(osp.join(out_dir, f'{name}.json'), rows, indent=2)

    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.axhline(fp32, color='k', linestyle='--', label=f'FP32 ({fp32:.2f}%)')
    for method in dict.fromkeys(r['method'] for r in rows[1:]):
        points = sorted((r['bits'], r['top1']) for r in rows[1:] if r['method'] == method)
        ax.plot(*zip(*points), marker='o', label=method)
    ax.set(xlabel='bits (weights = activations)', ylabel='top-1 (%)', title='Fashion-MNIST, DeiT-style ViT')
    ax.set_xticks(sorted({r['bits'] for r in rows[1:]}))
    ax.legend(fontsize=7)
    fig.tight_layout()
    with atomic_path(osp.join(out_dir, f'{name}.png')) as tmp:
        fig.savefig(tmp, dpi=120)
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description='FP32 vs quantized ViT on Fashion-MNIST, every method')
    parser.add_argument('--checkpoint', help=f'float checkpoint (default: the committed {FLOAT_CHECKPOINT})')
    parser.add_argument('--train', action='store_true', help='train the float ViT first instead')
    parser.add_argument('--bits', type=int, nargs='+', default=DEFAULT_BITS, help='bit-widths to run (weights = acts)')
    parser.add_argument('--work-dir', default='work_dirs/demo')
    parser.add_argument('--out', default='results', help='where demo.md, demo.json and demo.png go (demo_w4.* etc. '
                        'for other --bits)')
    parser.add_argument('--cfg-options', nargs='+', default=[], help='passed to every tools/test.py run')
    parser.add_argument('--bank-root', default='work_dirs/label_banks', help="VVTQ's label banks (built once)")
    parser.add_argument('--vvtq-iters', type=int, default=469, help="VVTQ's schedule (default: one epoch)")
    args = parser.parse_args()
    if args.train:
        checkpoint = train_float(osp.join(args.work_dir, 'fp32_train'))
    else:
        found = sorted(glob.glob(osp.join(ROOT, FLOAT_CHECKPOINT)))
        checkpoint = args.checkpoint or (found[-1] if found else None)
        if checkpoint is None:
            sys.exit(f'demo: no float checkpoint matches {FLOAT_CHECKPOINT}; pass --checkpoint or --train')
    if osp.abspath(checkpoint).startswith(ROOT + os.sep):
        checkpoint = osp.relpath(osp.abspath(checkpoint), ROOT)  # shorter commands in the report

    total = 1 + sum(b in bits for _, _, bits, _ in METHODS for b in args.bits)
    test = [sys.executable, 'tools/test.py']
    options = ['--cfg-options', *args.cfg_options] if args.cfg_options else []
    rows = [evaluate('FP32', None, test + [FLOAT_CONFIG, checkpoint] + options, osp.join(args.work_dir, 'fp32'),
                     f'1/{total}')]
    for name, config, method_bits, kind in METHODS:
        for bits in [b for b in args.bits if b in method_bits]:
            work_dir = osp.join(args.work_dir, f'{osp.splitext(osp.basename(config))[0]}_w{bits}a{bits}')
            step = f'{len(rows) + 1}/{total}'
            if kind == 'ptq':
                cmd = test + [config, checkpoint, '--cfg-options', f'model.backbone.qconfig.w_bits={bits}',
                              f'model.backbone.qconfig.a_bits={bits}', *args.cfg_options]
                rows.append(evaluate(name, bits, cmd, work_dir, step))
            elif kind == 'lampq':
                cmd = test + [config, checkpoint, '--cfg-options', f'test_cfg.weight_bits={bits}', *args.cfg_options]
                rows.append(evaluate(name, bits, cmd, work_dir, step))
            elif kind == 'vvtq':
                # The training set sits inside the label-bank wrapper: its dataset options go one level down; the
                # schedule is the demo's (train_cfg options of the other methods' loops are left out).
                inner = [re.sub(r'^train_dataloader\.dataset\.', 'train_dataloader.dataset.dataset.', o)
                         for o in args.cfg_options if not o.startswith('train_cfg.')]
                iters = args.vvtq_iters
                train_cmd = [sys.executable, 'tools/train.py', config, '--cfg-options',
                             f'model.checkpoint={checkpoint}',
                             f'train_dataloader.dataset.teacher_checkpoint={checkpoint}',
                             f'train_dataloader.dataset.bank_root={args.bank_root}', f'model.qconfig.w_bits={bits}',
                             f'model.qconfig.a_bits={bits}', f'train_cfg.max_iters={iters}',
                             f'param_scheduler.0.end={iters}', f'train_cfg.val_interval={iters}', *inner]
                cmd = test + [config] + (['--cfg-options', *inner] if inner else [])
                rows.append(evaluate(name, bits, cmd, work_dir, step, train_cmd))
            else:
                train_cmd = [sys.executable, 'tools/train.py', config, '--cfg-options',
                             f'model.teacher_checkpoint={checkpoint}', f'model.qconfig.w_bits={bits}',
                             f'model.qconfig.a_bits={bits}', *args.cfg_options]
                cmd = test + [config] + (['--cfg-options', *args.cfg_options] if args.cfg_options else [])
                rows.append(evaluate(name, bits, cmd, work_dir, step, train_cmd))
    # The default run's report is demo.*; runs at other widths get their own (demo_w4.*), not overwriting it.
    name = 'demo' if args.bits == DEFAULT_BITS else 'demo_' + '-'.join(f'w{b}' for b in args.bits)
    print(write_report(rows, args.out, name))
    print(f'[demo] wrote {args.out}/{name}.md, {name}.json and {name}.png')


if __name__ == '__main__':
    main()
