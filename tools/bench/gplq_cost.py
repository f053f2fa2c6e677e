"""GPLQ's cost against QAT and float fine-tuning, measured side by side in one run on the Fashion-MNIST ViT.

    python tools/bench/gplq_cost.py [--qat-max-epochs 10] [--work-dir work_dirs/bench_gplq] [--out FILE]

Three tools/train.py processes from the committed float ViT, each timed on the wall clock with its peak
resident memory from the OS and, on a GPU, the max_memory_allocated that mmengine logs (then the ratio uses it):
- GPLQ W4A4: stage 1 (one epoch, 4-bit activations, float weights) and stage 2 (weight PTQ + QwT);
- plain LSQ W4A4 QAT (weights and activations trained together, task loss), validated every epoch and
  stopped as soon as it reaches GPLQ's top-1, else after --qat-max-epochs epochs;
- float fine-tuning for one epoch at the same learning rate (the memory yardstick).
Prints the table and the ratios (GPLQ time / QAT time, GPLQ memory / float fine-tuning memory) and writes
them as JSON. Extra --cfg-options go to every run (e.g. a dataset subset for a quick check).
"""
import argparse
import os
import os.path as osp
import re
import sys

from mmengine.config import Config

from mmvitq.utils import run_measured, write_json

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
GPLQ = 'configs/gplq/gplq_deit-tiny-p4_4w4a_fashion-mnist.py'
QAT = 'configs/qat/lsq_deit-tiny-p4_4w4a_fashion-mnist.py'
FLOAT = 'configs/fp/deit-tiny-p4_fashion-mnist.py'
VAL = r'\(val\) \[[\d/\]\[ ]+\]\s+accuracy/top1: ([\d.]+)'


def train(config: str, work_dir: str, options: list[str]) -> dict:
    """One tools/train.py run: wall seconds, peak RSS (MiB) and every validation top-1 in its log."""
    os.makedirs(work_dir, exist_ok=True)
    log_file = osp.join(work_dir, 'bench.log')
    cmd = [sys.executable, 'tools/train.py', config, '--work-dir', work_dir]
    seconds, peak_mib = run_measured(cmd + (['--cfg-options', *options] if options else []), log_file, cwd=ROOT)
    with open(log_file) as f:
        text = f.read()
    tops = [float(v) for v in re.findall(VAL, text)]
    if not tops:
        sys.exit(f'gplq_cost: no validation top-1 in {log_file}')
    iters = re.findall(r'Iter\(train\) \[ *\d+/(\d+)\]', text)
    cuda = [int(m) for m in re.findall(r'\(train\).*\smemory: (\d+)', text)]  # max_memory_allocated, MiB
    return dict(config=config, seconds=seconds, peak_mib=peak_mib, cuda_peak_mib=max(cuda) if cuda else None,
                val_top1=tops, top1=tops[-1], iters=int(iters[-1]) if iters else None)


def qat_config(work_dir: str, target: float, per_epoch: int, max_epochs: int) -> str:
    """The QAT config validated every `per_epoch` iterations and stopped by EarlyStoppingHook at `target` top-1."""
    path = osp.abspath(osp.join(work_dir, 'qat_until_gplq.py'))
    os.makedirs(work_dir, exist_ok=True)
    with open(path, 'w') as f:
        f.write(f"_base_ = ['{osp.join(ROOT, QAT)}']\n"
                f"train_cfg = dict(max_iters={max_epochs * per_epoch}, val_interval={per_epoch})\n"
                "custom_hooks = [dict(type='QuantizerInitHook', num_images=512), dict(type='RandomStateHook'), "
                "dict(type='EarlyStoppingHook', monitor='accuracy/top1', rule='greater', "
                f"patience={max_epochs + 1}, stopping_threshold={target})]\n")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description='GPLQ vs QAT vs float fine-tuning: time, memory, accuracy')
    parser.add_argument('--qat-max-epochs', type=int, default=10)
    parser.add_argument('--work-dir', default='work_dirs/bench_gplq')
    parser.add_argument('--out', default='results/gplq_cost.json')
    parser.add_argument('--cfg-options', nargs='+', default=[], help='passed to every run, e.g. a data subset')
    args = parser.parse_args()
    float_ckpt = Config.fromfile(osp.join(ROOT, GPLQ)).model.teacher_checkpoint

    print('[bench] GPLQ W4A4 (stage 1 + stage 2) ...', flush=True)
    gplq = train(GPLQ, osp.join(args.work_dir, 'gplq'), args.cfg_options)
    print(f'[bench] GPLQ: {gplq["top1"]:.2f}%  {gplq["seconds"]:.0f} s  {gplq["peak_mib"]:.0f} MiB', flush=True)

    print(f'[bench] LSQ QAT W4A4 until {gplq["top1"]:.2f}% or {args.qat_max_epochs} epochs ...', flush=True)
    if gplq['iters'] is None:
        sys.exit('gplq_cost: no "Iter(train) [i/N]" line in the GPLQ log to read the epoch length from')
    qat = train(qat_config(args.work_dir, gplq['top1'], gplq['iters'], args.qat_max_epochs),
                osp.join(args.work_dir, 'qat'), args.cfg_options)
    qat['epochs'] = len(qat['val_top1'])
    qat['reached_gplq'] = max(qat['val_top1']) >= gplq['top1']
    qat['top1'] = max(qat['val_top1'])
    print(f'[bench] QAT: {qat["top1"]:.2f}% after {qat["epochs"]} epochs  {qat["seconds"]:.0f} s  '
          f'{qat["peak_mib"]:.0f} MiB', flush=True)

    print('[bench] float fine-tuning, 1 epoch ...', flush=True)
    finetune = train(FLOAT, osp.join(args.work_dir, 'float_finetune'),
                     [f'load_from={float_ckpt}', 'train_cfg.max_epochs=1', 'optim_wrapper.optimizer.lr=1e-4',
                      'param_scheduler=[]', *args.cfg_options])

    memory = 'cuda_peak_mib' if gplq['cuda_peak_mib'] and finetune['cuda_peak_mib'] else 'peak_mib'
    ratios = dict(gplq_time_over_qat_time=gplq['seconds'] / qat['seconds'],
                  gplq_memory_over_float_finetune_memory=gplq[memory] / finetune[memory], memory=memory,
                  qat_reached_gplq_top1=qat['reached_gplq'])
    rows = [('GPLQ W4A4', gplq), (f'LSQ QAT W4A4 ({qat["epochs"]} ep)', qat), ('float fine-tune (1 ep)', finetune)]
    print('\n| run | top-1 (%) | wall time (s) | peak RSS (MiB) | peak CUDA memory (MiB) |\n|---|---|---|---|---|')
    for name, r in rows:
        print(f'| {name} | {r["top1"]:.2f} | {r["seconds"]:.0f} | {r["peak_mib"]:.0f} | {r["cuda_peak_mib"] or "-"} |')
    print(f'\nGPLQ time / QAT time: {ratios["gplq_time_over_qat_time"]:.3f}'
          f'{"" if qat["reached_gplq"] else " (QAT never reached GPLQ top-1)"}; GPLQ memory / float fine-tuning '
          f'memory ({memory}): {ratios["gplq_memory_over_float_finetune_memory"]:.3f}')
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    write_json(args.out, dict(gplq=gplq, qat=qat, float_finetune=finetune, ratios=ratios), indent=2)
    print(f'[bench] wrote {args.out}')


if __name__ == '__main__':
    main()
