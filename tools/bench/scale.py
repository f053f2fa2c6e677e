"""The methods' training cost at real model scale, per iteration, projected to their published schedules.

    python tools/bench/scale.py [--device cpu|cuda] [--batch-size 8 (CPU) / 64 (GPU)] [--out FILE]

One run, side by side, on DeiT-S and Swin-T at 224x224 (ImageNet-1k heads) and on the Fashion-MNIST-scenes ViT
Mask R-CNN (128x128 scenes, batch 8), all with random weights (cost does not depend on their values) and random
inputs of the right shape. For each model, one training iteration (forward, backward, AdamW step) of:
- float fine-tuning;
- GPLQ stage 1 (4-bit activations, float weights; on classifiers with its PCA feature loss, which runs the float
  teacher too), activations saved for backward as float copies and as compact integer codes;
- plain LSQ QAT W4A4 (configs/_base_/qat.py);
- a VVTQ step (configs/_base_/vvtq.py): soft labels read from a label bank (classifiers; the detector trains on
  its own losses), the oscillation regulariser at full weight and the oscillation tracker's update.
Time: median of --repeats iterations after a warm-up one. Memory: the peak of the iteration above what was
allocated before it (weights, gradients and optimizer state of the previous step are freed or reused), from
torch.cuda.max_memory_allocated, or on CPU glibc's live heap sampled after every aten op (`step_memory.py`).
Then each method's total on its published ImageNet schedule, as iterations of --batch-size times the measured
iteration time, plus its one-off data passes measured the same way:
- GPLQ: one epoch of stage 1 (1,281,167 images; compact activations on a GPU, off on CPU, its default) + its
  calibration on 512 images (activation init: a forward pass; stage 2: weight calibration and QwT);
- VVTQ: 150 epochs + its label bank (4 crops of every image through the float teacher);
- LSQ QAT: 90 epochs (Esser et al., 2020).
Prints the tables with the arithmetic and writes JSON.
"""
import argparse
import os
import os.path as osp
import tempfile
from types import SimpleNamespace

import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope
from fake_quant import timeit  # tools/bench/fake_quant.py and step_memory.py, beside this script
from step_memory import HeapPeak

import mmvitq  # noqa: F401  (registers the methods)
from mmvitq.engine.calib import observe
from mmvitq.engine.vvtq import OscillationTrackerHook
from mmvitq.methods.gplq.stages import calibrate_weights, fit_compensations, fit_feature_pca
from mmvitq.methods.vvtq.label_bank import LabelBank, build_label_bank
from mmvitq.utils import write_json

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
IMAGENET_IMAGES = 1_281_167
MODELS = {  # name: (config holding the float architecture, default scope, input size)
    'DeiT-S': ('configs/gplq/gplq_deit-small-p16_4w4a_in1k.py', 'mmpretrain', 224),
    'Swin-T': ('configs/gplq/gplq_swin-tiny-p4-w7_4w4a_in1k.py', 'mmpretrain', 224),
    'ViT Mask R-CNN (scenes)': ('configs/gplq/gplq_mask-rcnn_vit-nano-p8-w8_simple-fpn_4w4a_fashion-mnist-scenes.py',
                                'mmdet', 128),
}
BASES = {name: Config.fromfile(osp.join(ROOT, f'configs/_base_/{name}.py')) for name in ('gplq', 'qat', 'vvtq')}
SCHEDULES = dict(gplq=1, vvtq=150, qat=90)  # ImageNet epochs
GPLQ_CALIB_IMAGES, VVTQ_BANK_CROPS = 512, 4


def method_configs(architecture: dict, checkpoint: str, detector: bool) -> dict:
    """The model config of each run on `architecture` (float weights in `checkpoint`); GPLQ with its PCA feature
    loss (a teacher forward each step) on classifiers, on the detection losses alone on detectors, as its configs."""
    gplq = dict(type='GPLQ', architecture=architecture, teacher_checkpoint=checkpoint,
                qconfig=BASES['gplq'].gplq_qconfig, feature_loss_weight=0.0 if detector else 1.0)
    return {
        'float fine-tune': architecture,
        'GPLQ stage 1': dict(gplq, compact_activations=False),
        'GPLQ stage 1, compact': dict(gplq, compact_activations=True),
        'LSQ QAT': dict(type='QAT', architecture=architecture, checkpoint=checkpoint,
                        qconfig=BASES['qat'].qat_qconfig, compact_activations=False),
        'VVTQ step': dict(type='VVTQ', architecture=architecture, checkpoint=checkpoint,
                          qconfig=BASES['vvtq'].vvtq_qconfig, regularizer=BASES['vvtq'].vvtq_regularizer,
                          compact_activations=False),
    }


def random_batch(scope: str, batch_size: int, size: int, num_classes: int) -> tuple[torch.Tensor, list]:
    """Preprocessed random inputs and their labels (classifier: a class each; detector: boxes and masks)."""
    generator = torch.Generator().manual_seed(0)
    if scope == 'mmdet':
        from mmdet.testing import demo_mm_inputs
        packed = demo_mm_inputs(batch_size, [[3, size, size]] * batch_size, num_items=[4] * batch_size,
                                num_classes=num_classes, with_mask=True)
        return packed['inputs'], packed['data_samples']
    from mmpretrain.structures import DataSample
    inputs = [torch.randint(0, 256, (3, size, size), generator=generator, dtype=torch.uint8) for _ in
              range(batch_size)]
    labels = torch.randint(0, num_classes, (batch_size, ), generator=generator)
    return inputs, [DataSample().set_gt_label(int(label)) for label in labels]


def label_bank(path: str, num_images: int, num_classes: int) -> LabelBank:
    """A bank of random top-5 soft labels for `num_images` images, one crop each, written as VVTQ writes one."""
    logits = torch.randn(num_images, num_classes, generator=torch.Generator().manual_seed(0))
    requests = [dict(box=(0., 0., 1., 1.), flip=False) for _ in range(num_images)]
    build_label_bank(path, num_images, 1, 5, [({}, requests)], lambda batch: logits, settings={})
    return LabelBank(path)


class Run:
    """One method's model and optimizer on one batch, stepped and measured."""

    def __init__(self, name: str, cfg: dict, data: dict, device: torch.device, bank: LabelBank = None) -> None:
        from mmengine.registry import MODELS as ROOT_MODELS
        self.name, self.data, self.bank = name, data, bank
        self.model = ROOT_MODELS.build(cfg)
        if hasattr(self.model, 'student'):
            self.model.init_weights()  # loads the float checkpoint
            observe(self.model, [data])  # the quantizers' initial ranges, as the methods' hooks and loops do
            if getattr(self.model, 'feature_loss_weight', 0):
                fit_feature_pca(self.model, [data['inputs']])  # GPLQ's PCA basis, before stage 1
        self.model.to(device).train()
        self.vvtq = name.startswith('VVTQ')
        if self.vvtq:
            self.model.progress = 1.0  # the regulariser at full weight
            self.tracker = OscillationTrackerHook(interval=1)
        self.optim = build_optim_wrapper(self.model, dict(optimizer=dict(type='AdamW', lr=1e-5)))

    def samples(self) -> list:
        """The batch's labels; VVTQ's classifier steps read their soft labels from the bank each time."""
        samples = self.data['data_samples']
        if self.vvtq and self.bank is not None:
            for i, sample in enumerate(samples):
                sample.set_gt_score(self.bank.soft_label(i, 0))
        return samples

    def step(self) -> None:
        losses = self.model(self.data['inputs'], self.samples(), mode='loss')
        self.optim.update_params(self.model.parse_losses(losses)[0])  # sums every 'loss*' term, lists too
        if self.vvtq:
            self.tracker.after_train_iter(SimpleNamespace(model=self.model, iter=0), 0)

    def measure(self, repeats: int) -> dict:
        device = self.data['inputs'].device
        # one warm-up step first: optimizer state, lazily created buffers, kernel caches
        seconds = timeit(self.step, device, repeats, warmup=1) / 1e3
        if device.type == 'cuda':
            base = torch.cuda.memory_allocated()
            torch.cuda.reset_peak_memory_stats()
            self.step()
            peak = torch.cuda.max_memory_allocated() - base
        else:
            with HeapPeak() as heap:
                self.step()
            peak = heap.peak
        return dict(seconds=seconds, peak_mib=peak / 2**20)

    @torch.no_grad()
    def forward_seconds(self, repeats: int) -> float:
        """Median time of a no-grad forward of the batch (a label-bank or calibration pass)."""
        self.model.eval()
        forward = lambda: self.model(self.data['inputs'], self.data['data_samples'], mode='tensor')  # noqa: E731
        seconds = timeit(forward, self.data['inputs'].device, repeats, warmup=1) / 1e3
        self.model.train()
        return seconds

    def gplq_stage2_seconds(self) -> float:
        """GPLQ stage 2 (weight calibration, then QwT block by block) on the batch."""

        def stage2() -> None:
            calibrate_weights(self.model)
            fit_compensations(self.model, [self.data['inputs']])

        seconds = timeit(stage2, self.data['inputs'].device, 1, warmup=0) / 1e3
        self.model.train()
        return seconds


def bench_model(name: str, args, device: torch.device, tmp: str) -> dict:
    config, scope, size = MODELS[name]
    cfg = Config.fromfile(osp.join(ROOT, config))
    architecture = cfg.model.architecture  # a ConfigDict: mmdet reads its train_cfg by attribute
    if scope == 'mmpretrain':
        architecture.train_cfg = None  # no Mixup/CutMix: VVTQ's soft labels replace them (as its configs do)
    with DefaultScope.overwrite_default_scope(scope):
        from mmengine.registry import MODELS as ROOT_MODELS
        float_model = ROOT_MODELS.build(architecture)
        checkpoint = osp.join(tmp, f'{name.split()[0]}.pth')
        torch.save(float_model.state_dict(), checkpoint)
        num_classes = 1000 if scope == 'mmpretrain' else 10
        inputs, samples = random_batch(scope, args.batch_size, size, num_classes)
        data = float_model.data_preprocessor(dict(inputs=inputs, data_samples=samples), True)
        data = dict(inputs=data['inputs'].to(device), data_samples=[s.to(device) for s in data['data_samples']])
        bank = label_bank(osp.join(tmp, 'bank'), args.batch_size, num_classes) if scope == 'mmpretrain' else None
        runs, extra = {}, {}
        for run_name, run_cfg in method_configs(architecture, checkpoint, scope == 'mmdet').items():
            print(f'[bench] {name}: {run_name} ...', flush=True)
            run = Run(run_name, run_cfg, data, device, bank)
            runs[run_name] = run.measure(args.repeats)
            if run_name == 'float fine-tune':
                extra['forward_seconds'] = run.forward_seconds(args.repeats)
            if run_name == 'GPLQ stage 1':
                extra['gplq_stage2_seconds'] = run.gplq_stage2_seconds()
            print(f'[bench] {name}: {run_name}: {runs[run_name]["seconds"]:.3f} s, '
                  f'{runs[run_name]["peak_mib"]:.0f} MiB', flush=True)
            del run
    base = runs['float fine-tune']
    for r in runs.values():
        r['time_vs_float'], r['memory_vs_float'] = r['seconds'] / base['seconds'], r['peak_mib'] / base['peak_mib']
    return dict(config=config, input_size=size, runs=runs, **extra)


def projection(result: dict, batch_size: int, gplq_run: str = 'GPLQ stage 1') -> dict:
    """Device-hours of each method on its published ImageNet schedule, with the arithmetic as text; GPLQ's stage 1
    as `gplq_run` (its default: compact activations on a GPU only)."""
    runs, iters_per_epoch = result['runs'], IMAGENET_IMAGES / batch_size
    calib = (result['forward_seconds'] + result['gplq_stage2_seconds']) * GPLQ_CALIB_IMAGES / batch_size
    bank = result['forward_seconds'] * VVTQ_BANK_CROPS * iters_per_epoch
    hours = dict(
        gplq=(SCHEDULES['gplq'] * iters_per_epoch * runs[gplq_run]['seconds'] + calib) / 3600,
        vvtq=(SCHEDULES['vvtq'] * iters_per_epoch * runs['VVTQ step']['seconds'] + bank) / 3600,
        qat=SCHEDULES['qat'] * iters_per_epoch * runs['LSQ QAT']['seconds'] / 3600)
    text = dict(
        gplq=f'1 ep x {iters_per_epoch:,.0f} it x {runs[gplq_run]["seconds"]:.3f} s + (activation init '
        f'{result["forward_seconds"]:.3f} s + stage 2 {result["gplq_stage2_seconds"]:.2f} s) x '
        f'{GPLQ_CALIB_IMAGES}/{batch_size}',
        vvtq=f'150 ep x {iters_per_epoch:,.0f} it x {runs["VVTQ step"]["seconds"]:.3f} s + bank '
        f'{VVTQ_BANK_CROPS} x {iters_per_epoch:,.0f} x {result["forward_seconds"]:.3f} s',
        qat=f'90 ep x {iters_per_epoch:,.0f} it x {runs["LSQ QAT"]["seconds"]:.3f} s')
    return dict(hours=hours, arithmetic=text, vvtq_over_gplq=hours['vvtq'] / hours['gplq'],
                qat_over_gplq=hours['qat'] / hours['gplq'])


def main() -> None:
    parser = argparse.ArgumentParser(description='Per-iteration cost of the methods at DeiT-S/Swin-T/Mask R-CNN scale')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--batch-size', type=int, help='default: 8 on CPU, 64 on a GPU')
    parser.add_argument('--repeats', type=int, default=3, help='timed iterations per run after one warm-up')
    parser.add_argument('--models', nargs='+', default=list(MODELS), choices=list(MODELS))
    parser.add_argument('--out', help='JSON file (default: results/scale_<device>_b<batch size>.json)')
    args = parser.parse_args()
    args.batch_size = args.batch_size or (64 if args.device == 'cuda' else 8)
    device = torch.device(args.device)
    torch.manual_seed(0)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models:
            results[name] = bench_model(name, args, device, tmp)
    print(f'\n{args.device}, batch {args.batch_size}: one training iteration (forward, backward, AdamW step)\n'
          '| model | run | time (s) | vs float FT | peak memory (MiB) | vs float FT |\n|---|---|---|---|---|---|')
    for name, result in results.items():
        for run, r in result['runs'].items():
            print(f'| {name} | {run} | {r["seconds"]:.3f} | {r["time_vs_float"]:.2f} | {r["peak_mib"]:.0f} | '
                  f'{r["memory_vs_float"]:.2f} |')
    print('\nProjected to the published ImageNet schedules (device-hours at this batch and device)\n'
          '| model | GPLQ | VVTQ | LSQ QAT | VVTQ / GPLQ | QAT / GPLQ |\n|---|---|---|---|---|---|')
    for name, result in results.items():
        if result['input_size'] != 224:
            continue
        gplq_run = 'GPLQ stage 1, compact' if device.type == 'cuda' else 'GPLQ stage 1'  # GPLQ's default
        result['projection'] = p = projection(result, args.batch_size, gplq_run)
        print(f'| {name} | {p["hours"]["gplq"]:.1f} | {p["hours"]["vvtq"]:.0f} | {p["hours"]["qat"]:.0f} | '
              f'{p["vvtq_over_gplq"]:.0f} | {p["qat_over_gplq"]:.0f} |')
        for method, text in p['arithmetic'].items():
            print(f'  {name} {method}: {text} = {p["hours"][method]:.1f} h')
    args.out = args.out or f'results/scale_{args.device}_b{args.batch_size}.json'
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    write_json(args.out, dict(device=args.device, batch_size=args.batch_size, models=results,
                              torch=torch.__version__), indent=2)
    print(f'[bench] wrote {args.out}')


if __name__ == '__main__':
    main()
