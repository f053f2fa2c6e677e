"""LampQ at test time: search the bit allocation, then PTQ-calibrate and test, from any quantized config.

    test_cfg = dict(type='LampQTestLoop', weight_bits=4.0, num_images=512, search_images=256)

The search (see mmvitq.methods.lampq) runs on the first `search_images` images of the calibration loader;
its allocation is written to `lampq_w<W>a<A>_allocation.json` in the work dir (W, A: the budgets, e.g.
`lampq_w4a4_allocation.json`) and drawn in the `.png` of the same name, then every quantizer is calibrated at
its width as in PTQTestLoop, `lampq_w<W>a<A>.pth` is saved and the test runs. Under DDP every rank searches
on the same images (the unwrapped model: no collective inside), rank 0's allocation is given to all, and
rank 0's calibrated state too. The `allocation` entry holds layer paths relative to the quantized backbone,
so the file itself can be a qconfig's `overrides`: e.g. GPLQ on a LampQ allocation,

    python tools/train.py configs/gplq/CONFIG --cfg-options model.qconfig.overrides=WORK_DIR/lampq_w4a4_allocation.json

Zero-shot (`data='synthetic'`): the search and the calibration use images optimised from noise through the float
classifier instead (mmvitq.methods.lampq.synthetic); no real image is read.
"""
import os.path as osp
import time
from typing import Optional, Sequence, Union

import torch
from mmengine import dist
from mmengine.logging import print_log
from mmengine.registry import LOOPS
from torch.utils.data import DataLoader

from ..methods.lampq import find_units, search_allocation
from ..methods.lampq.report import plot_allocation
from ..methods.lampq.search import check_search_args, set_allocation
from ..methods.lampq.synthetic import synthesize_batches
from ..quantizers.base import check_int
from ..utils import write_json
from .calib import observe, preprocessed
from .dist import unwrap
from .loops import PTQTestLoop


@LOOPS.register_module()
class LampQTestLoop(PTQTestLoop):
    """PTQTestLoop preceded by LampQ's search.

    Args:
        weight_bits: average bits per weight element (the model-size budget).
        act_bits: average bits per quantized input element (None: `weight_bits`).
        bops_bits: optional BOPs budget, as the uniform width with the same BOPs.
        bits: candidate widths.
        rounds: at most so many sensitivity + ILP rounds.
        type_aware: normalise sensitivities within each module type (False: the ablation without it).
        search_images: calibration images for the search (quantizer ranges per width and Fisher).
        data: 'real' (images of the calibration loader) or 'synthetic' (zero-shot: `search_images` images
            optimised from noise through the float classifier search and calibrate; no real image is read).
        synthetic: settings of the synthetic images: image_shape (C, H, W, required) and num_classes
            (required), steps, lr, entropy_weight, batch_size (see mmvitq.methods.lampq.synthetic).
    """

    DATA = ('real', 'synthetic')
    SYNTHETIC_KEYS = ('image_shape', 'num_classes', 'steps', 'lr', 'entropy_weight', 'batch_size')

    def __init__(self, runner, dataloader: Union[DataLoader, dict], evaluator, weight_bits: float = 4.0,
                 act_bits: Optional[float] = None, bops_bits: Optional[float] = None,
                 bits: Sequence[int] = (2, 3, 4, 5, 6, 8), rounds: int = 3, type_aware: bool = True,
                 search_images: int = 256, data: str = 'real', synthetic: Optional[dict] = None, **kwargs) -> None:
        check_int('test_cfg.search_images', search_images, 1)
        if data not in self.DATA:
            raise ValueError(f'test_cfg.data must be one of {self.DATA}, got {data!r}')
        synthetic = dict(synthetic or {})
        unknown = set(synthetic) - set(self.SYNTHETIC_KEYS)
        if unknown:
            raise ValueError(f'test_cfg.synthetic: unknown settings {sorted(unknown)}, allowed: {self.SYNTHETIC_KEYS}')
        for key in ('image_shape', 'num_classes'):
            if data == 'synthetic' and key not in synthetic:
                raise ValueError(f"test_cfg.synthetic.{key} is needed with data='synthetic'")
        check_search_args(weight_bits, act_bits, bops_bits, bits, rounds, type_aware, where='test_cfg.')
        super().__init__(runner, dataloader, evaluator, **kwargs)
        self.search_kwargs = dict(weight_bits=weight_bits, act_bits=act_bits, bops_bits=bops_bits, bits=tuple(bits),
                                  rounds=rounds, type_aware=type_aware)
        self.search_images, self.data, self.synthetic = search_images, data, synthetic
        self.synthetic_batches: list[dict] = []
        # The searched widths live in the checkpoints this loop writes and re-tests.
        for unit in find_units(unwrap(runner.model)):
            for quantizer in unit.quantizers:
                quantizer.accept_state_bits = True

    @property
    def budget_tag(self) -> str:
        kwargs = self.search_kwargs
        act = kwargs['weight_bits'] if kwargs['act_bits'] is None else kwargs['act_bits']
        return f"lampq_w{kwargs['weight_bits']:g}a{act:g}"

    @property
    def checkpoint_name(self) -> str:
        return f'{self.budget_tag}.pth'

    def _search_batches(self) -> list[dict]:
        """`search_images` preprocessed images: the calibration loader's first, or synthetic ones."""
        model = unwrap(self.runner.model)
        if self.data == 'synthetic':
            settings = dict(self.synthetic)
            start = time.perf_counter()
            self.synthetic_batches = synthesize_batches(model, find_units(model), self.search_images,
                                                        settings.pop('batch_size', 128), **settings)
            print_log(f'LampQ: {self.search_images} synthetic images in {time.perf_counter() - start:.1f} s',
                      logger='current')
            return self.synthetic_batches
        return list(preprocessed(model, self.calib_dataloader, self.search_images))

    def search(self) -> dict:
        """Run LampQ's search on the model; returns the allocation (also written as JSON)."""
        model = unwrap(self.runner.model)
        batches = self._search_batches()
        seen = sum(len(b['inputs']) for b in batches)
        start = time.perf_counter()
        result = search_allocation(model, batches, where='test_cfg.', **self.search_kwargs)
        seconds = time.perf_counter() - start
        shared = [result.allocation]
        dist.broadcast_object_list(shared, 0)  # every rank calibrates at rank 0's widths
        result.allocation = shared[0]
        set_allocation(result.units, result.allocation)
        units = result.units
        params, elements = sum(u.params for u in units), sum(u.act_elements for u in units if u.act_quants)
        w_avg = sum(u.params * result.allocation[u.path].get('w_bits', 0) for u in units) / max(params, 1)
        a_avg = sum(u.act_elements * result.allocation[u.path].get('a_bits', 0) for u in units) / max(elements, 1)
        allocation = result.allocation  # relative to the backbone when every layer is in it (qconfig overrides)
        if all(path.startswith('backbone.') for path in allocation):
            allocation = {path[len('backbone.'):]: bits for path, bits in allocation.items()}
        report = dict(search=self.search_kwargs, data=self.data, images=seen, seconds=seconds,
                      rounds=len(result.rounds), costs=[r['cost'] for r in result.rounds],
                      average_weight_bits=w_avg, average_act_bits=a_avg, allocation=allocation)
        path = osp.join(self.runner.work_dir, f'{self.budget_tag}_allocation.json')
        if dist.is_main_process():
            write_json(path, report, indent=2)
            plot_allocation(allocation, path[:-len('.json')] + '.png',
                            f'LampQ, average {w_avg:.2f} weight / {a_avg:.2f} input bits')
        print_log(f'LampQ: {len(units)} layers, {len(result.rounds)} rounds on {seen} images in {seconds:.1f} s; '
                  f'average weight bits {w_avg:.3f}, activation bits {a_avg:.3f}; allocation in {path}',
                  logger='current')
        return allocation

    def calibrate(self) -> int:
        self.search()
        return super().calibrate()

    def _observe(self, model: torch.nn.Module) -> int:
        """Zero-shot: calibrate on the synthetic images; else on the calibration loader as PTQ does."""
        if self.data != 'synthetic':
            return super()._observe(model)
        return observe(model, self.synthetic_batches)
