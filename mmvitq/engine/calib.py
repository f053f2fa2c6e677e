"""What every calibrating loop and hook shares: the first N images of a loader, the same on every rank, and the
calibration pass over them.

Under DDP the training loader gives each rank its own shard, so calibrating on it gave each rank other
ranges. `calibration_loader` reads the whole dataset in the order one process would (same seed, same
batching, the worker seeds of rank 0), so N processes calibrate on exactly the images one process does;
`mmvitq.engine.dist.broadcast_state` then makes every rank hold rank 0's result bit for bit.
"""
import functools
from typing import Iterable, Iterator, Optional, Union

import torch
from mmengine.dist import get_world_size
from torch import nn
from torch.utils.data import BatchSampler, DataLoader, Sampler

from ..quantizers import BaseQuantizer, calibration


class WholeDatasetSampler(Sampler):
    """Every index once, in the order a one-process DefaultSampler or InfiniteSampler with `seed` reads them first."""

    def __init__(self, size: int, shuffle: bool, seed: int) -> None:
        self.size, self.shuffle, self.seed = size, shuffle, seed

    def __iter__(self) -> Iterator[int]:
        if not self.shuffle:
            return iter(range(self.size))
        generator = torch.Generator()
        generator.manual_seed(self.seed)
        return iter(torch.randperm(self.size, generator=generator).tolist())

    def __len__(self) -> int:
        return self.size


def _rank0_worker_init(fn):
    """mmengine's worker_init_fn seeds workers by rank; calibration data must not depend on it."""
    if isinstance(fn, functools.partial) and 'rank' in fn.keywords:
        return functools.partial(fn.func, *fn.args, **{**fn.keywords, 'rank': 0})
    return fn


def calibration_loader(runner, dataloader: Union[DataLoader, dict]) -> DataLoader:
    """The loader of `dataloader` (a config or a built loader) over the whole dataset, on every rank in the order
    one process reads it: its dataset, batching, collate and worker settings, rank 0's worker seeds."""
    loader = runner.build_dataloader(dataloader, seed=runner.seed) if isinstance(dataloader, dict) else dataloader
    sampler = loader.batch_sampler.sampler if loader.batch_sampler is not None else loader.sampler
    if not (hasattr(sampler, 'shuffle') and hasattr(sampler, 'seed')):
        if get_world_size() == 1:
            return loader
        raise ValueError(f'calibration under DDP needs a DefaultSampler or InfiniteSampler (an order that does not '
                         f'depend on the rank), got {type(sampler).__name__}')
    whole = WholeDatasetSampler(len(loader.dataset), bool(sampler.shuffle), int(sampler.seed))
    batches = loader.batch_sampler
    if type(batches) is BatchSampler:
        batches = BatchSampler(whole, batches.batch_size, drop_last=False)
    else:  # e.g. mmdet's AspectRatioBatchSampler: the same grouping over the whole dataset
        batches = type(batches)(whole, batches.batch_size, drop_last=False)
    return DataLoader(loader.dataset, batch_sampler=batches, num_workers=loader.num_workers,
                      collate_fn=loader.collate_fn, pin_memory=loader.pin_memory,
                      worker_init_fn=_rank0_worker_init(loader.worker_init_fn))


def _batch_size(batch: dict) -> int:
    return len(batch['inputs'])


def _head(batch: dict, count: int) -> dict:
    """The first `count` images of a collated batch (inputs and data samples)."""
    return {key: value[:count] if key in ('inputs', 'data_samples') and value is not None else value
            for key, value in batch.items()}


def first_images(loader: DataLoader, num_images: int) -> Iterator[dict]:
    """The batches of `loader` up to exactly `num_images` images (the last one cut short), unpreprocessed."""
    seen = 0
    for batch in loader:
        take = min(num_images - seen, _batch_size(batch))
        yield batch if take == _batch_size(batch) else _head(batch, take)
        seen += take
        if seen >= num_images:
            return


def preprocessed(model: nn.Module, loader: DataLoader, num_images: int) -> Iterator[dict]:
    """The first `num_images` images of `loader` through the model's data preprocessor (as at test time)."""
    for batch in first_images(loader, num_images):
        yield model.data_preprocessor(batch, False)


@torch.no_grad()
def observe(model: nn.Module, batches: Iterable[dict], quantizers: Optional[Iterable[BaseQuantizer]] = None) -> int:
    """Calibrate the quantizers of `model` (or only `quantizers`) on preprocessed `batches`, the model in eval mode
    and run as `mode='tensor'`; returns the number of images seen. Callers then give every rank rank 0's state
    (`mmvitq.engine.dist.broadcast_state`)."""
    model.eval()
    seen = 0
    with calibration(model, quantizers):
        for data in batches:
            model(data['inputs'], data.get('data_samples'), mode='tensor')
            seen += len(data['inputs'])
    return seen
