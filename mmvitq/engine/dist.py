"""Distributed helpers: CPU `torchrun`, unwrapping DDP, and rank 0's model state on every rank.

`torchrun` on CPU: mmengine's launcher calls torch.cuda.set_device, which fails without a GPU.
Initialising the gloo process group before the Runner makes mmengine skip its own init_dist, and DDP
must then be built without device ids.
"""
import torch
import torch.distributed as dist
from mmengine import dist as mmengine_dist
from mmengine.config import Config
from mmengine.model import is_model_wrapper
from torch import nn


def setup_cpu_distributed(cfg: Config) -> None:
    """For a distributed launch on a machine without CUDA: gloo group, DDP without device_ids."""
    if cfg.get('launcher', 'none') == 'none' or torch.cuda.is_available():
        return
    if not dist.is_initialized():
        dist.init_process_group('gloo')
    cfg.setdefault('model_wrapper_cfg',
                   dict(type='MMDistributedDataParallel', device_ids=None, broadcast_buffers=False))


def unwrap(model: nn.Module) -> nn.Module:
    """The model inside a DDP (or other mmengine) wrapper, else the model itself."""
    return model.module if is_model_wrapper(model) else model


def broadcast_state(model: nn.Module) -> None:
    """Give every rank rank 0's state_dict (weights, buffers, quantizer state; data-dependent shapes included).

    Every rank issues the same collectives, in rank 0's order: one object broadcast of the layout, then one
    tensor broadcast per entry. A rank whose own state has other keys fails after them (never hangs the others).
    """
    if mmengine_dist.get_world_size() == 1:
        return
    state = model.state_dict()
    layout = [[(key, tuple(value.shape), value.dtype) for key, value in state.items()]]
    mmengine_dist.broadcast_object_list(layout, 0)
    received = {}
    for key, shape, dtype in layout[0]:
        local = state.get(key)
        same = local is not None and tuple(local.shape) == shape and local.dtype == dtype
        device = local.device if local is not None else 'cpu'
        tensor = local if same else torch.empty(shape, dtype=dtype, device=device)
        wire = tensor.to(torch.uint8) if dtype == torch.bool else tensor
        mmengine_dist.broadcast(wire, 0)
        received[key] = wire.to(torch.bool) if dtype == torch.bool else wire
    missing = [key for key in state if key not in received]
    if missing:
        raise RuntimeError(f'broadcast_state: rank {mmengine_dist.get_rank()} has entries rank 0 lacks: {missing[:5]}')
    model.load_state_dict(received, strict=True)
