"""A test-only hook: after the test loop, each rank saves its model's state, so DDP tests can compare ranks."""
import os.path as osp

import torch
from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmengine.registry import HOOKS

from mmvitq.engine.dist import unwrap


@HOOKS.register_module()
class RankStateHook(Hook):
    """Writes `state_rank<r>.pth` (the unwrapped model's state_dict) into the work dir after testing."""

    def after_test(self, runner) -> None:
        state = {k: v.detach().cpu() for k, v in unwrap(runner.model).state_dict().items()}
        torch.save(state, osp.join(runner.work_dir, f'state_rank{get_rank()}.pth'))
