"""`make demo`: the float ViT on Fashion-MNIST, then the quantization methods, as one table and a plot.

    python tools/demo.py [--full] [--checkpoint CKPT | --train] [--bits 8 4] [--work-dir work_dirs/demo] [--out results]
    python tools/demo.py [--full] --dry-run     # the rows and their commands, without running them

Every row tests on the full Fashion-MNIST test set (10,000 images). The default demo (10 minutes on 2 CPU cores,
first row after 25 s) runs FP32, PTQ min-max at W8A8 and W4A4, the two best-value W4A4 PTQ baselines (RepQ-ViT
style, MSE), LampQ and the two trained methods on a short schedule named in their row: GPLQ and VVTQ train one pass
over the first quarter of the training split (15,000 of 60,000 images, 118 iterations of 128, i.e. 1/4 epoch), so
VVTQ's label bank holds those 15,000 images only. `--full` runs the whole table: every PTQ config at W8A8 and
W4A4, LampQ, and GPLQ and VVTQ for one epoch of the whole training split (several times longer), written as
demo_full.*.

Each run is a tools/train.py or tools/test.py subprocess (its log goes to the work dir), timed on the wall clock,
with its peak resident memory read from the OS. Each runs PyTorch on half the cores (OMP_NUM_THREADS, `--threads`):
the model is tiny, and the threads of a run otherwise compete with its data-loader worker (on 2 cores one thread
is several times faster than two, with the same top-1). Training runs skip their own validation passes (the validation
set is the test set, which the row's test run reads anyway). Writes OUT/demo.md (table and the commands behind each
row), OUT/demo.json and OUT/demo.png (top-1 against bits); other --bits write demo_w4.* etc.
"""
import argparse
import glob
import json
import math
import os
import os.path as osp
import re
import sys
import time
from typing import NamedTuple, Optional

from mmvitq.utils import atomic_path, run_measured, write_json, write_text

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
FLOAT_CONFIG = 'configs/fp/deit-tiny-p4_fashion-mnist.py'
FLOAT_CHECKPOINT = 'checkpoints/deit-tiny-p4_fashion-mnist-*.pth'
DEFAULT_BITS = [8, 4]
TRAIN_IMAGES = 60000  # the Fashion-MNIST training split
BATCH_SIZE = 128  # the Fashion-MNIST configs' training batch
SHORT_IMAGES = TRAIN_IMAGES // 4  # the default demo's trained rows: one pass over the first 15,000 images


class Row(NamedTuple):
    """A method of the demo: its label, config, bit-widths and how it runs.

    kind: 'ptq' configs test the float checkpoint with their bits set in model.backbone.qconfig; 'lampq' configs
    test it with their average bits set in test_cfg.weight_bits (mixed precision); 'train' configs
    (model.qconfig, GPLQ) start from it as the teacher, train, and their last checkpoint is tested; 'vvtq' configs
    start from it (student and label-bank teacher), train one pass over their training images (or --vvtq-iters
    iterations) and their last checkpoint is tested.
    train_images: for the trained kinds, how many of the training images they train on (the first ones, through
    the dataset's `indices`; the label bank is built for those only); None: all of them.
    """
    method: str
    config: str
    bits: tuple
    kind: str
    train_images: Optional[int] = None


PTQ_CONFIG = 'configs/ptq/ptq-{}_deit-tiny-p4_4w4a_fashion-mnist.py'
PTQ = [('PTQ min-max', 'minmax'), ('PTQ min-max, per-channel act', 'minmax-channel'),
       ('PTQ percentile', 'percentile'), ('PTQ percentile, per-channel act', 'percentile-channel'),
       ('PTQ MSE', 'mse'), ('PTQ MSE, per-channel act', 'mse-channel'), ('PTQ RepQ-ViT style', 'repq')]
LAMPQ = Row('LampQ (mixed, average bits)', 'configs/lampq/lampq_deit-tiny-p4_4bit_fashion-mnist.py', (4, ), 'lampq')
GPLQ_CONFIG = 'configs/gplq/gplq_deit-tiny-p4_4w4a_fashion-mnist.py'
VVTQ_CONFIG = 'configs/vvtq/vvtq_deit-tiny-p4_4w4a_fashion-mnist.py'
#: `--full`: every method, every PTQ config at W8A8 and W4A4, the trained methods for one epoch.
FULL_ROWS = [Row(name, PTQ_CONFIG.format(key), (8, 4), 'ptq') for name, key in PTQ] + [
    LAMPQ,
    Row('GPLQ (1 epoch + PTQ)', GPLQ_CONFIG, (4, ), 'train'),
    Row('VVTQ (1 epoch)', VVTQ_CONFIG, (4, ), 'vvtq'),
]
#: The default demo: PTQ min-max at both widths, the best W4A4 PTQ baselines for their cost (RepQ-ViT style, 36 s;
#: MSE, 47 s, the best PTQ row), LampQ, and the trained methods on a quarter of an epoch (named in the label).
DEFAULT_ROWS = [
    Row('PTQ min-max', PTQ_CONFIG.format('minmax'), (8, 4), 'ptq'),
    Row('PTQ RepQ-ViT style', PTQ_CONFIG.format('repq'), (4, ), 'ptq'),
    Row('PTQ MSE', PTQ_CONFIG.format('mse'), (4, ), 'ptq'),
    LAMPQ,
    Row('GPLQ (1/4 epoch + PTQ)', GPLQ_CONFIG, (4, ), 'train', SHORT_IMAGES),
    Row('VVTQ (1/4 epoch)', VVTQ_CONFIG, (4, ), 'vvtq', SHORT_IMAGES),
]
#: Training runs validate on the test set, which each row's own test run reads: switched off (results unchanged).
NO_VALIDATION = ['val_dataloader=None', 'val_cfg=None', 'val_evaluator=None']


def run(cmd: list[str], log_file: str) -> tuple[float, float]:
    """Run `cmd` from the repo root with its output in `log_file`; returns (wall seconds, peak RSS in MiB)."""
    try:
        return run_measured(cmd, log_file, cwd=ROOT)
    except RuntimeError as e:
        sys.exit(f'demo: {e}')


def evaluate(name: str, bits: 'int | None', cmd: list[str], work_dir: str, step: str,
             train_cmd: 'list[str] | None' = None, start: Optional[float] = None) -> dict:
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
    since = f'  ({time.perf_counter() - start:.0f} s since start)' if start is not None else ''
    print(f'[demo] {step} {label}: top-1 {top1:.2f}%  {seconds:.0f} s  {peak_mib:.0f} MiB{since}', flush=True)
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


def vvtq_iters(row: Row, override: Optional[int]) -> int:
    """VVTQ's iterations: `--vvtq-iters`, else one pass over the row's training images."""
    return override or math.ceil((row.train_images or TRAIN_IMAGES) / BATCH_SIZE)


def row_label(row: Row, override_iters: Optional[int] = None) -> str:
    """The row's method label; a VVTQ schedule set by --vvtq-iters is named in it instead of the row's own."""
    if row.kind == 'vvtq' and override_iters:
        images = f', {row.train_images // 1000}k images' if row.train_images else ''
        return f'VVTQ ({override_iters} iterations{images})'
    return row.method


def inner(options: list[str]) -> list[str]:
    """VVTQ's options: the training set sits inside the label-bank wrapper, so its dataset options go one level
    down; the schedule is the demo's (train_cfg options of the other methods' loops are left out)."""
    return [re.sub(r'^train_dataloader\.dataset\.', 'train_dataloader.dataset.dataset.', o)
            for o in options if not o.startswith('train_cfg.')]


def plan(args: argparse.Namespace, checkpoint: str) -> list[tuple]:
    """The demo's runs: (label, bits, test command, work dir, train command or None), FP32 first."""
    test = [sys.executable, 'tools/test.py']
    options = list(args.cfg_options)
    runs = [('FP32', None, test + [FLOAT_CONFIG, checkpoint] + (['--cfg-options', *options] if options else []),
             osp.join(args.work_dir, 'fp32'), None)]
    # Options of the demo's training runs: no validation, the user's validation options left out with it.
    train_options = [o for o in options if not o.startswith(('val_dataloader', 'val_cfg', 'val_evaluator'))]
    for row in FULL_ROWS if args.full else DEFAULT_ROWS:
        subset = [] if row.train_images is None else [f'train_dataloader.dataset.indices={row.train_images}']
        for bits in [b for b in args.bits if b in row.bits]:
            tag = osp.splitext(osp.basename(row.config))[0] + (
                f'_{row.train_images // 1000}k' if row.train_images else '')
            work_dir = osp.join(args.work_dir, f'{tag}_w{bits}a{bits}')
            train_cmd = None
            if row.kind == 'ptq':
                cmd = test + [row.config, checkpoint, '--cfg-options', f'model.backbone.qconfig.w_bits={bits}',
                              f'model.backbone.qconfig.a_bits={bits}', *options]
            elif row.kind == 'lampq':
                cmd = test + [row.config, checkpoint, '--cfg-options', f'test_cfg.weight_bits={bits}', *options]
            elif row.kind == 'vvtq':
                iters = vvtq_iters(row, args.vvtq_iters)
                train_cmd = [sys.executable, 'tools/train.py', row.config, '--cfg-options',
                             f'model.checkpoint={checkpoint}',
                             f'train_dataloader.dataset.teacher_checkpoint={checkpoint}',
                             f'train_dataloader.dataset.bank_root={args.bank_root}', f'model.qconfig.w_bits={bits}',
                             f'model.qconfig.a_bits={bits}', f'train_cfg.max_iters={iters}',
                             f'param_scheduler.0.end={iters}', f'train_cfg.val_interval={iters}',
                             *inner(subset + train_options), *NO_VALIDATION]
                cmd = test + [row.config] + (['--cfg-options', *inner(options)] if options else [])
            else:
                train_cmd = [sys.executable, 'tools/train.py', row.config, '--cfg-options',
                             f'model.teacher_checkpoint={checkpoint}', f'model.qconfig.w_bits={bits}',
                             f'model.qconfig.a_bits={bits}', *subset, *train_options, *NO_VALIDATION]
                cmd = test + [row.config] + (['--cfg-options', *options] if options else [])
            runs.append((row_label(row, args.vvtq_iters), bits, cmd, work_dir, train_cmd))
    return runs


def report_name(full: bool, bits: list[int]) -> str:
    """demo (default rows and bits), demo_full (--full), demo_w4 / demo_full_w4 (other --bits)."""
    name = 'demo_full' if full else 'demo'
    return name if bits == DEFAULT_BITS else name + '_' + '-'.join(f'w{b}' for b in bits)


def write_report(rows: list[dict], out_dir: str, name: str = 'demo', total_seconds: Optional[float] = None,
                 full: bool = False) -> str:
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
              'tools/train.py process for trained methods (its own validation passes off), each on '
              f'{os.environ.get("OMP_NUM_THREADS", "all")} PyTorch thread'
              f'{"" if os.environ.get("OMP_NUM_THREADS") == "1" else "s"}; peak memory is the peak resident set size.']
    if not full:
        lines += ['', f'Trained rows on "1/4 epoch" train one pass over the first {SHORT_IMAGES:,} of the '
                  f'{TRAIN_IMAGES:,} training images ({math.ceil(SHORT_IMAGES / BATCH_SIZE)} iterations of '
                  f'{BATCH_SIZE}; VVTQ\'s label bank covers those images only); `--full` runs one epoch of all of '
                  'them and every PTQ config at both widths (demo_full.md).']
    if total_seconds is not None:
        lines += ['', f'Whole demo: {total_seconds / 60:.1f} min.']
    lines += ['', 'Commands:', '']
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


def parse_args(argv: Optional[list[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='FP32 vs quantized ViT on Fashion-MNIST')
    parser.add_argument('--full', action='store_true', help='every PTQ config at every width, GPLQ and VVTQ for one '
                        'epoch (several times longer; writes demo_full.*)')
    parser.add_argument('--checkpoint', help=f'float checkpoint (default: the committed {FLOAT_CHECKPOINT})')
    parser.add_argument('--train', action='store_true', help='train the float ViT first instead')
    parser.add_argument('--bits', type=int, nargs='+', default=DEFAULT_BITS, help='bit-widths to run (weights = acts)')
    parser.add_argument('--work-dir', default='work_dirs/demo')
    parser.add_argument('--out', default='results', help='where demo.md, demo.json and demo.png go (demo_full.* '
                        'with --full, demo_w4.* etc. for other --bits)')
    parser.add_argument('--cfg-options', nargs='+', default=[], help='passed to every tools/test.py run')
    parser.add_argument('--bank-root', default='work_dirs/label_banks', help="VVTQ's label banks (built once)")
    parser.add_argument('--vvtq-iters', type=int, help="VVTQ's iterations (default: one pass over its training "
                        'images: 469 with --full, 118 otherwise)')
    parser.add_argument('--threads', type=int, help='PyTorch threads of each run (OMP_NUM_THREADS; default: the '
                        'environment\'s OMP_NUM_THREADS, else half the cores)')
    parser.add_argument('--dry-run', action='store_true', help='print the rows and their commands, run nothing')
    return parser.parse_args(argv)


def main() -> None:
    start = time.perf_counter()
    args = parse_args()
    if args.threads is not None or 'OMP_NUM_THREADS' not in os.environ:
        threads = args.threads or max(1, (os.cpu_count() or 2) // 2)
        os.environ['OMP_NUM_THREADS'] = os.environ['MKL_NUM_THREADS'] = str(threads)  # every run's
    if args.train:
        checkpoint = osp.join(args.work_dir, 'fp32_train', 'epoch_N.pth') if args.dry_run else train_float(
            osp.join(args.work_dir, 'fp32_train'))
    else:
        found = sorted(glob.glob(osp.join(ROOT, FLOAT_CHECKPOINT)))
        checkpoint = args.checkpoint or (found[-1] if found else None)
        if checkpoint is None:
            sys.exit(f'demo: no float checkpoint matches {FLOAT_CHECKPOINT}; pass --checkpoint or --train')
    if osp.abspath(checkpoint).startswith(ROOT + os.sep):
        checkpoint = osp.relpath(osp.abspath(checkpoint), ROOT)  # shorter commands in the report

    runs = plan(args, checkpoint)
    if args.dry_run:
        for label, bits, cmd, _, train_cmd in runs:
            print(f'{label} ({"FP32" if bits is None else f"W{bits}A{bits}"}):')
            for c in ([train_cmd] if train_cmd else []) + [cmd]:
                print('    ' + ' '.join(['python', *c[1:]]))
        return
    rows = []
    for label, bits, cmd, work_dir, train_cmd in runs:
        rows.append(evaluate(label, bits, cmd, work_dir, f'{len(rows) + 1}/{len(runs)}', train_cmd, start))
    name = report_name(args.full, args.bits)
    total = time.perf_counter() - start
    print(write_report(rows, args.out, name, total, args.full))
    print(f'[demo] wrote {args.out}/{name}.md, {name}.json and {name}.png; {total / 60:.1f} min in all')


if __name__ == '__main__':
    main()
