"""LampQ at test time: search the bit allocation, then PTQ-calibrate and test, from any quantized config.

    test_cfg = dict(type='LampQTestLoop', weight_bits=4.0, num_images=512, search_images=256)

The search (see mmvitq.methods.lampq) runs on the first `search_images` images of the calibration loader;
its allocation is written to `lampq_allocation.json` in the work dir (the `allocation` entry is a qconfig
`overrides` dict, so GPLQ or QAT can train with it), then every quantizer is calibrated at its width as in
PTQTestLoop, `ptq_calibrated.pth` is saved and the test runs.
"""
import json
import os.path as osp
import time
from typing import Optional, Sequence, Union

from mmengine import dist
from mmengine.logging import print_log
from mmengine.registry import LOOPS
from torch.utils.data import DataLoader

from ..methods.lampq import search_allocation
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
        search_images: calibration images for the search (quantizer ranges per width and Fisher).
    """

    def __init__(self, runner, dataloader: Union[DataLoader, dict], evaluator, weight_bits: float = 4.0,
                 act_bits: Optional[float] = None, bops_bits: Optional[float] = None,
                 bits: Sequence[int] = (2, 3, 4, 5, 6, 8), rounds: int = 3, search_images: int = 256,
                 **kwargs) -> None:
        if isinstance(search_images, bool) or not isinstance(search_images, int) or search_images < 1:
            raise ValueError(f'LampQTestLoop: search_images must be an int >= 1, got {search_images!r}')
        super().__init__(runner, dataloader, evaluator, **kwargs)
        self.search_kwargs = dict(weight_bits=weight_bits, act_bits=act_bits, bops_bits=bops_bits, bits=tuple(bits),
                                  rounds=rounds)
        self.search_images = search_images

    def search(self) -> dict:
        """Run LampQ's search on the model; returns the allocation (also written as JSON)."""
        model = self.runner.model
        batches, seen = [], 0
        for batch in self.calib_dataloader:
            batches.append(model.data_preprocessor(batch, False))
            seen += len(batches[-1]['inputs'])
            if seen >= self.search_images:
                break
        start = time.perf_counter()
        result = search_allocation(model, batches, **self.search_kwargs)
        seconds = time.perf_counter() - start
        units = result.units
        params, elements = sum(u.params for u in units), sum(u.act_elements for u in units if u.act_quants)
        w_avg = sum(u.params * result.allocation[u.path].get('w_bits', 0) for u in units) / max(params, 1)
        a_avg = sum(u.act_elements * result.allocation[u.path].get('a_bits', 0) for u in units) / max(elements, 1)
        report = dict(search=self.search_kwargs, images=seen, seconds=seconds, rounds=len(result.rounds),
                      costs=[r['cost'] for r in result.rounds], average_weight_bits=w_avg, average_act_bits=a_avg,
                      allocation=result.allocation)
        if dist.is_main_process():
            with open(osp.join(self.runner.work_dir, 'lampq_allocation.json'), 'w') as f:
                json.dump(report, f, indent=2)
        print_log(f'LampQ: {len(units)} layers, {len(result.rounds)} rounds on {seen} images in {seconds:.1f} s; '
                  f'average weight bits {w_avg:.3f}, activation bits {a_avg:.3f}; allocation in '
                  f'{osp.join(self.runner.work_dir, "lampq_allocation.json")}', logger='current')
        return result.allocation

    def calibrate(self) -> int:
        self.search()
        return super().calibrate()
