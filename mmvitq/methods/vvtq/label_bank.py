"""The multi-crop label bank: K random crops per training image and the float teacher's soft labels for them,
computed once into memory-mapped files, so that distillation needs no teacher forward pass in training.

Files in the bank directory (numpy .npy, opened with mmap_mode='r'):
    boxes.npy    float32 [N, K, 4]  crop (top, left, height, width) as fractions of the image size
    flips.npy    bool    [N, K]     horizontal flip after the crop
    classes.npy  int16   [N, K, k]  the teacher's top-k classes
    probs.npy    float32 [N, K, k]  their probabilities
    meta.json    num_images, num_crops, topk, num_classes and the settings the bank was built from
The soft label of a crop keeps the top-k probabilities and spreads the remaining mass evenly over the other
classes ("marginal smoothing", as FKD's soft labels).
"""
import json
import os
import os.path as osp
import shutil
from typing import Callable, Iterable, Optional, Sequence

import numpy as np
import torch
from torch import Tensor

FILES = {'boxes': (np.float32, (4, )), 'flips': (np.bool_, ()), 'classes': (np.int16, None),
         'probs': (np.float32, None)}


class LabelBank:
    """Read access to a built bank directory (see the module docstring)."""

    def __init__(self, path: str) -> None:
        with open(osp.join(path, 'meta.json')) as f:
            self.meta = json.load(f)
        self.path = path
        self.num_images, self.num_crops = self.meta['num_images'], self.meta['num_crops']
        self.topk, self.num_classes = self.meta['topk'], self.meta['num_classes']
        self.arrays = {name: np.load(osp.join(path, f'{name}.npy'), mmap_mode='r') for name in FILES}

    def crop(self, index: int, crop: int) -> dict:
        """The crop request of crop `crop` of image `index`: box fractions and flip."""
        return dict(box=tuple(float(v) for v in self.arrays['boxes'][index, crop]),
                    flip=bool(self.arrays['flips'][index, crop]))

    def soft_label(self, index: int, crop: int) -> Tensor:
        """The marginally smoothed teacher distribution of a crop, float32 [num_classes]."""
        classes = torch.from_numpy(self.arrays['classes'][index, crop].astype(np.int64))
        probs = torch.from_numpy(np.array(self.arrays['probs'][index, crop]))
        rest = self.num_classes - self.topk
        fill = (1.0 - probs.sum()).clamp_min(0) / rest if rest else torch.zeros(())
        return torch.full((self.num_classes, ), float(fill)).scatter_(0, classes, probs)


def build_label_bank(path: str, num_images: int, num_crops: int, topk: int,
                     batches: Iterable[tuple[dict, list[dict]]], teacher: Callable[[dict], Tensor], settings: dict,
                     log: Optional[Callable[[str], None]] = None) -> None:
    """Write a bank to `path` (into a temporary directory first, renamed when complete).

    Args:
        batches: (collated batch, crop requests filled with box and flip) covering images 0..num_images-1 in
            order, `num_crops` consecutive crops per image.
        teacher: collated batch -> logits [B, num_classes].
        settings: stored in meta.json, to tell what the bank was built from.
    """
    tmp = f'{path}.tmp-{os.getpid()}'
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    arrays, num_classes, done = {}, None, 0
    for step, (batch, requests) in enumerate(batches):
        with torch.no_grad():
            probs = teacher(batch).float().softmax(dim=-1)
        if not arrays:
            num_classes = probs.shape[-1]
            if not 1 <= topk <= num_classes:
                raise ValueError(f'label bank: topk must be in 1..{num_classes} (the classes), got {topk}')
            for name, (dtype, tail) in FILES.items():
                shape = (num_images, num_crops) + (tail if tail is not None else (topk, ))
                arrays[name] = np.lib.format.open_memmap(osp.join(tmp, f'{name}.npy'), 'w+', dtype, shape)
        count = len(requests) // num_crops
        top = probs.topk(topk, dim=-1)
        rows = slice(done, done + count)
        arrays['boxes'][rows] = np.array([r['box'] for r in requests], np.float32).reshape(count, num_crops, 4)
        arrays['flips'][rows] = np.array([r['flip'] for r in requests]).reshape(count, num_crops)
        arrays['classes'][rows] = top.indices.cpu().numpy().astype(np.int16).reshape(count, num_crops, topk)
        arrays['probs'][rows] = top.values.cpu().numpy().reshape(count, num_crops, topk)
        done += count
        if log is not None and step % 50 == 0:
            log(f'label bank: {done}/{num_images} images')
    if done != num_images:
        raise RuntimeError(f'label bank: the batches covered {done} images, expected {num_images}')
    for array in arrays.values():
        array.flush()
    with open(osp.join(tmp, 'meta.json'), 'w') as f:
        json.dump(dict(num_images=num_images, num_crops=num_crops, topk=topk, num_classes=num_classes,
                       settings=settings), f, indent=1, default=str)
    shutil.rmtree(path, ignore_errors=True)
    os.replace(tmp, path)


def merge_label_banks(parts: Sequence[str], path: str) -> None:
    """Join banks of consecutive image ranges (in order, the same crops and settings) into one bank at `path`,
    written into a temporary directory first and renamed when complete."""
    def size(part: str) -> int:
        with open(osp.join(part, 'meta.json')) as f:
            return json.load(f)['num_images']

    parts = [part for part in parts if size(part)] or list(parts[:1])  # more ranks than images: empty shares
    if len(parts) == 1:
        shutil.rmtree(path, ignore_errors=True)
        os.replace(parts[0], path)
        return
    banks = [LabelBank(part) for part in parts]
    num_images = sum(bank.num_images for bank in banks)
    tmp = f'{path}.tmp-{os.getpid()}'
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    for name in FILES:
        first = banks[0].arrays[name]
        out = np.lib.format.open_memmap(osp.join(tmp, f'{name}.npy'), 'w+', first.dtype,
                                        (num_images, ) + first.shape[1:])
        done = 0
        for bank in banks:
            out[done:done + bank.num_images] = bank.arrays[name]
            done += bank.num_images
        out.flush()
    with open(osp.join(tmp, 'meta.json'), 'w') as f:
        json.dump(dict(banks[0].meta, num_images=num_images), f, indent=1, default=str)
    shutil.rmtree(path, ignore_errors=True)
    os.replace(tmp, path)
