"""Local checkpoint loading that resumes under torch >= 2.6.

torch.load now defaults to weights_only=True, but a Runner checkpoint pickles mmengine objects
(HistoryBuffer, numpy scalars in message hubs), so mmengine 0.10.7's `--resume` fails. This
re-registers mmengine's local-file scheme with weights_only=False for files the user points at;
published checkpoints (tools/publish_model.py) hold tensors only and load with weights_only=True.
"""
import os.path as osp
from typing import Any, Optional

import torch
from mmengine.runner.checkpoint import CheckpointLoader


@CheckpointLoader.register_scheme(prefixes='', force=True)
def load_from_local(filename: str, map_location: Optional[Any] = None) -> dict:
    """Load a local checkpoint, Runner state included."""
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    return torch.load(filename, map_location=map_location, weights_only=False)
