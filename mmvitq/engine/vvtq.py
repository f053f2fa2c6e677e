"""OscillationTrackerHook: how often VVTQ's (or any QAT run's) integer weights flip, logged, plotted, checkpointed.

    custom_hooks = [dict(type='QuantizerInitHook', num_images=512), dict(type='ProgressHook'),
                    dict(type='OscillationTrackerHook', interval=1), dict(type='RandomStateHook')]
"""
import os.path as osp
from typing import Optional

import torch
from mmengine import dist
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.registry import HOOKS

from ..methods.vvtq import OscillationTracker
from ..methods.vvtq.regularizer import grid_position
from ..methods.vvtq.report import plot_oscillation
from ..models import quantized_layers
from ..quantizers.base import check_int
from ..utils import write_json
from .dist import unwrap


@HOOKS.register_module()
class OscillationTrackerHook(Hook):
    """Track how often the integer weights oscillate (see `OscillationTracker`), per quantized layer.

    Every `interval` iterations the integer codes of each enabled weight quantizer are compared with the last
    ones. Every `log_interval` iterations the EMA rate of the whole model (weights counted equally) is logged
    as `osc_rate` (in %) and recorded; after training the history and the last per-layer rates are written to
    `oscillation.json` and plotted to `oscillation.png` in the work dir. The trackers' state is checkpointed.
    """

    priority = 'LOW'

    def __init__(self, interval: int = 1, momentum: float = 0.01, log_interval: int = 50) -> None:
        check_int('custom_hooks: OscillationTrackerHook.interval', interval, 1)
        check_int('custom_hooks: OscillationTrackerHook.log_interval', log_interval, 1)
        self.interval, self.momentum, self.log_interval = interval, momentum, log_interval
        self.trackers: dict[str, OscillationTracker] = {}
        self.sizes: dict[str, int] = {}
        self.history: list[tuple[int, float]] = []
        OscillationTracker(momentum)  # validates momentum

    def _layers(self, runner) -> dict:
        return quantized_layers(unwrap(runner.model), enabled=True)

    def rate(self) -> float:
        """The model's oscillation rate (EMA, %), each weight counted once."""
        total = sum(self.sizes.values())
        return 100.0 * sum(t.ema * self.sizes[n] for n, t in self.trackers.items()) / max(total, 1)

    def after_train_iter(self, runner, batch_idx: int, data_batch: Optional[dict] = None,
                         outputs: Optional[dict] = None) -> None:
        if (runner.iter + 1) % self.interval:
            return
        with torch.no_grad():
            for name, layer in self._layers(runner).items():
                tracker = self.trackers.setdefault(name, OscillationTracker(self.momentum))
                tracker.update(grid_position(layer.weight, layer.weight_quant).round())
                self.sizes[name] = layer.weight.numel()
        if (runner.iter + 1) % self.log_interval == 0:
            self.history.append((runner.iter + 1, self.rate()))
            runner.message_hub.update_scalar('train/osc_rate', self.history[-1][1])

    def after_train(self, runner) -> None:
        if not dist.is_main_process() or not self.trackers:
            return
        report = dict(model_rate=self.rate(), history=self.history,
                      layers={n: 100.0 * t.ema for n, t in self.trackers.items()})
        write_json(osp.join(runner.work_dir, 'oscillation.json'), report, indent=1)
        plot_oscillation({runner.experiment_name: self.history}, osp.join(runner.work_dir, 'oscillation.png'))
        print_log(f'OscillationTrackerHook: oscillation rate {report["model_rate"]:.3f}% at the end; '
                  f'oscillation.json/.png in {runner.work_dir}', logger='current')

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint['oscillation'] = dict(history=self.history, sizes=self.sizes,
                                         trackers={n: t.state_dict() for n, t in self.trackers.items()})

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        state = checkpoint.get('oscillation')
        if state is None:
            return
        self.history, self.sizes = [tuple(p) for p in state['history']], dict(state['sizes'])
        self.trackers = {}
        for name, tracker_state in state['trackers'].items():
            self.trackers[name] = OscillationTracker(self.momentum)
            self.trackers[name].load_state_dict(tracker_state)
