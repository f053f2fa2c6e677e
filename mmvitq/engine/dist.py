"""`torchrun` on CPU: mmengine's launcher calls torch.cuda.set_device, which fails without a GPU.

Initialising the gloo process group before the Runner makes mmengine skip its own init_dist, and DDP
must then be built without device ids.
"""
import torch
import torch.distributed as dist
from mmengine.config import Config


def setup_cpu_distributed(cfg: Config) -> None:
    """For a distributed launch on a machine without CUDA: gloo group, DDP without device_ids."""
    if cfg.get('launcher', 'none') == 'none' or torch.cuda.is_available():
        return
    if not dist.is_initialized():
        dist.init_process_group('gloo')
    cfg.setdefault('model_wrapper_cfg',
                   dict(type='MMDistributedDataParallel', device_ids=None, broadcast_buffers=False))
