"""Training data for multi-crop distillation: a dataset wrapper that reads crops and soft labels from a label
bank (built on first use), and the transform that cuts the banked crop.

    train_dataloader = dict(dataset=dict(
        type='LabelBankDataset',
        dataset=dict(type='FashionMNIST', ...),               # any dataset, its own pipeline is not used
        pipeline=[dict(type='BankedResizedCrop', size=28), dict(type='PackInputs')],
        teacher=_base_.model, teacher_checkpoint='float.pth',  # the float model that labels the crops
        bank_root='work_dirs/label_banks', num_crops=4, topk=5))

Each read of image i draws one of its K banked crops at random, cuts it with `BankedResizedCrop` and attaches
the crop's soft label as `gt_score` (mmpretrain heads then train on it; use a soft cross-entropy loss). The
bank lives in `bank_root/<hash of the settings>` (the teacher checkpoint counted by its content), so every
config with the same data, crops and teacher shares one bank, built once and reused by later runs. Under DDP
each rank labels its own share of the images and rank 0 joins the shares; a build killed mid-way leaves only a
temporary directory, removed by the next build.
"""
import glob
import hashlib
import json
import math
import os
import os.path as osp
import shutil
import socket
from typing import Optional, Sequence, Union

import mmcv
import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmengine import dist
from mmengine.dataset import Compose, pseudo_collate
from mmengine.logging import print_log
from mmengine.registry import MODELS as ROOT_MODELS
from mmpretrain.registry import DATASETS, TRANSFORMS
from torch.utils.data import DataLoader, Dataset, Subset

from ...models.checkpoint import load_float_checkpoint
from ...quantizers.base import check_int
from ...utils import check_checkpoint_arg, is_url, pid_alive, preserved_random_state
from .label_bank import LabelBank, build_label_bank, merge_label_banks


def draw_crop(height: int, width: int, scale: Sequence[float], ratio: Sequence[float]) -> tuple[int, int, int, int]:
    """A RandomResizedCrop box (top, left, h, w) in pixels, drawn with numpy's global generator (torchvision's
    rule: ten tries at a random area and aspect ratio, then the largest centre crop within the ratio range)."""
    area = height * width
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target = area * np.random.uniform(*scale)
        aspect = math.exp(np.random.uniform(*log_ratio))
        w, h = int(round(math.sqrt(target * aspect))), int(round(math.sqrt(target / aspect)))
        if 0 < w <= width and 0 < h <= height:
            return np.random.randint(0, height - h + 1), np.random.randint(0, width - w + 1), h, w
    aspect = width / height
    if aspect < min(ratio):
        w, h = width, int(round(width / min(ratio)))
    elif aspect > max(ratio):
        h, w = height, int(round(height * max(ratio)))
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


@TRANSFORMS.register_module()
class BankedResizedCrop(BaseTransform):
    """Cut the crop named in `results['bank_crop']` and resize it to `size`; flip it if the bank says so.

    `results['bank_crop']` is a dict: with 'box' (top, left, height, width as fractions of the image) and
    'flip', that crop is cut; empty, a new RandomResizedCrop box (`scale`, `ratio`) and a flip (probability
    `flip_prob`) are drawn and written into it (how the bank is built).
    """

    def __init__(self, size: Union[int, Sequence[int]], scale: Sequence[float] = (0.08, 1.0),
                 ratio: Sequence[float] = (3 / 4, 4 / 3), flip_prob: float = 0.5,
                 interpolation: str = 'bilinear') -> None:
        self.size = (size, size) if isinstance(size, int) else tuple(size)
        if not (len(scale) == 2 and 0 < scale[0] <= scale[1] <= 1):
            raise ValueError(f'BankedResizedCrop.scale must be (low, high) with 0 < low <= high <= 1, got {scale!r}')
        if not (len(ratio) == 2 and 0 < ratio[0] <= ratio[1]):
            raise ValueError(f'BankedResizedCrop.ratio must be (low, high) with 0 < low <= high, got {ratio!r}')
        self.scale, self.ratio = tuple(scale), tuple(ratio)
        self.flip_prob, self.interpolation = flip_prob, interpolation

    def transform(self, results: dict) -> dict:
        request = results.get('bank_crop')
        if request is None:
            raise KeyError("BankedResizedCrop needs results['bank_crop']: use it inside a LabelBankDataset pipeline")
        img = results['img']
        height, width = img.shape[:2]
        if 'box' not in request:
            top, left, h, w = draw_crop(height, width, self.scale, self.ratio)
            request.update(box=(top / height, left / width, h / height, w / width),
                           flip=bool(np.random.rand() < self.flip_prob))
        top, left, h, w = request['box']
        y0, x0 = int(round(top * height)), int(round(left * width))
        y1, x1 = min(y0 + max(int(round(h * height)), 1), height), min(x0 + max(int(round(w * width)), 1), width)
        img = mmcv.imresize(img[y0:y1, x0:x1], self.size[::-1], interpolation=self.interpolation)
        if request['flip']:
            img = mmcv.imflip(img, 'horizontal')
        results['img'], results['img_shape'] = img, img.shape[:2]
        return results


def _fingerprint(settings: dict) -> str:
    return hashlib.sha1(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:10]


def file_sha256(path: str) -> str:
    """The sha256 of a file's content (read in 16 MiB pieces)."""
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for piece in iter(lambda: f.read(1 << 24), b''):
            digest.update(piece)
    return digest.hexdigest()


def _owner_alive(tmp_dir: str) -> bool:
    """Whether the build writing `tmp_dir` (`<bank>.tmp-<host>-<pid>`, or `<bank>.tmp-<pid>` from older builds)
    may still be running: a live process on this machine, or any build of another machine."""
    host, _, pid = tmp_dir.rpartition('.tmp-')[2].rpartition('-')
    if not pid.isdigit():
        return True  # not a name we write: leave it alone
    if host and host != socket.gethostname():
        return True
    return pid_alive(int(pid))


def clean_stale_builds(bank_path: str) -> list[str]:
    """Remove the temporary directories of killed builds of `bank_path`; returns those removed."""
    stale = [d for d in glob.glob(f'{glob.escape(bank_path)}.tmp-*') if osp.isdir(d) and not _owner_alive(d)]
    for directory in stale:
        shutil.rmtree(directory, ignore_errors=True)
    return stale


@DATASETS.register_module()
class LabelBankDataset(Dataset):
    """Wrap a dataset for multi-crop distillation (see the module docstring).

    Args:
        dataset: the dataset config (or object); only its images and labels are used.
        pipeline: transforms from the loaded image to the packed sample, with a `BankedResizedCrop`.
        teacher: config of the float model that labels the crops; `teacher_checkpoint`: its weights (file or URL).
        data_preprocessor: the teacher's data preprocessor when its config has none (pass the config's top-level
            `data_preprocessor`, which the Runner would otherwise add).
        bank_root: directory holding banks, one sub-directory per distinct setting.
        num_crops: crops K per image; topk: teacher probabilities kept per crop.
        seed: seed of the crop draws when the bank is built (each image's draws are seeded by (seed, index)).
        batch_images: images per teacher batch when building (each gives num_crops crops).
        build_workers: data-loading processes when building; the teacher runs on the GPU if there is one. None:
            the CPU cores beyond two, at most 4 (on 2 cores the teacher builds fastest with none: 46 s for 10,000
            images against 81-84 s with 1-4 workers).
    """

    def __init__(self, dataset: Union[dict, Dataset], pipeline: Sequence[dict], teacher: dict, teacher_checkpoint: str,
                 bank_root: str = 'work_dirs/label_banks', num_crops: int = 4, topk: int = 5, seed: int = 0,
                 batch_images: int = 64, build_workers: Optional[int] = None,
                 data_preprocessor: Optional[dict] = None) -> None:
        if build_workers is None:
            build_workers = min(4, max((os.cpu_count() or 1) - 2, 0))
        for name, value, low in (('num_crops', num_crops, 1), ('topk', topk, 1), ('batch_images', batch_images, 1),
                                 ('build_workers', build_workers, 0)):
            check_int(f'train_dataloader.dataset.{name}', value, low)  # where a LabelBankDataset sits in a config
        if not any(t.get('type') in ('BankedResizedCrop', BankedResizedCrop) for t in pipeline):
            raise ValueError("train_dataloader.dataset.pipeline needs a dict(type='BankedResizedCrop', size=...) step")
        check_checkpoint_arg('train_dataloader.dataset.teacher_checkpoint', teacher_checkpoint)
        teacher = dict(teacher)
        if data_preprocessor is not None:
            teacher.setdefault('data_preprocessor', data_preprocessor)
        self.dataset = DATASETS.build(dataset) if isinstance(dataset, dict) else dataset
        named = dataset if isinstance(dataset, dict) else f'{type(dataset).__qualname__} of {len(self.dataset)}'
        content = teacher_checkpoint if is_url(teacher_checkpoint) else f'sha256:{file_sha256(teacher_checkpoint)}'
        settings = dict(dataset=named, pipeline=list(pipeline), teacher=teacher, teacher_checkpoint=content,
                        num_crops=num_crops, topk=topk, seed=seed, draws='seeded per image')
        self.pipeline = Compose(pipeline)
        self.metainfo = getattr(self.dataset, 'metainfo', {})
        self.bank_path = osp.join(bank_root, _fingerprint(settings))
        self.batch_images, self.build_workers = batch_images, build_workers
        build = [not osp.isfile(osp.join(self.bank_path, 'meta.json'))]
        dist.broadcast_object_list(build, 0)  # rank 0 decides, so every rank takes the same path
        if build[0]:
            print_log(f'label bank: building {self.bank_path} ({len(self.dataset)} images x {num_crops} crops'
                      + (f', {dist.get_world_size()} ranks' if dist.get_world_size() > 1 else '') + ')',
                      logger='current')
            self._build(teacher, teacher_checkpoint, settings)
        self.bank = LabelBank(self.bank_path)
        if self.bank.num_images != len(self.dataset):
            raise ValueError(f'label bank {self.bank_path} holds {self.bank.num_images} images, the dataset '
                             f'{len(self.dataset)}: delete the bank directory to rebuild it')
        print_log(f'label bank: {self.bank_path} ({self.bank.num_images} images x {self.bank.num_crops} crops, '
                  f'top-{self.bank.topk} of {self.bank.num_classes} classes)', logger='current')

    def __len__(self) -> int:
        return len(self.dataset)

    def prepare(self, index: int, request: dict, soft_label: Optional[torch.Tensor] = None) -> dict:
        """Image `index` through the pipeline, cut by the crop request."""
        results = self.dataset.get_data_info(index)
        results['bank_crop'] = request
        if soft_label is not None:
            results['gt_score'] = soft_label
        return self.pipeline(results)

    def __getitem__(self, index: int) -> dict:
        crop = np.random.randint(self.bank.num_crops)
        return self.prepare(index, self.bank.crop(index, crop), self.bank.soft_label(index, crop))

    def _build(self, teacher_cfg: dict, checkpoint: str, settings: dict) -> None:
        """Label the crops with the teacher, each rank its contiguous share of the images, then rank 0 joins the
        shares. The global random generators (torch, numpy, random) are put back afterwards, so a run that builds
        the bank trains exactly as one that finds it built."""
        rank, world = dist.get_rank(), dist.get_world_size()
        if rank == 0:
            for directory in clean_stale_builds(self.bank_path):
                print_log(f'label bank: removed {directory}, left by a killed build', logger='current')
        token = [f'{socket.gethostname()}-{os.getpid()}']
        dist.broadcast_object_list(token, 0)
        tmp = f'{self.bank_path}.tmp-{token[0]}'
        shards = [osp.join(tmp, f'shard-{r}') for r in range(world)]
        first, last = rank * len(self.dataset) // world, (rank + 1) * len(self.dataset) // world
        with preserved_random_state():
            device = 'cuda' if torch.cuda.is_available() else 'cpu'
            teacher = ROOT_MODELS.build(teacher_cfg)
            load_float_checkpoint(checkpoint, teacher)
            teacher.to(device).eval()
            draws = Subset(_CropDraws(self, settings['num_crops'], settings['seed']), range(first, last))
            loader = DataLoader(draws, batch_size=self.batch_images, num_workers=self.build_workers,
                                collate_fn=_collate_draws)

            def logits(batch: dict) -> torch.Tensor:
                return teacher(teacher.data_preprocessor(batch, False)['inputs'], mode='tensor')

            build_label_bank(shards[rank], last - first, settings['num_crops'], settings['topk'], loader, logits,
                             settings, log=lambda msg: print_log(msg, logger='current'))
        dist.barrier()
        if rank == 0:
            merge_label_banks(shards, self.bank_path)
            shutil.rmtree(tmp, ignore_errors=True)
        dist.barrier()


class _CropDraws(Dataset):
    """Image i -> `num_crops` freshly drawn crops of it and their filled requests. numpy's generator is seeded by
    (seed, i) for each image, so the bank does not depend on how many workers build it."""

    def __init__(self, owner: LabelBankDataset, num_crops: int, seed: int) -> None:
        self.owner, self.num_crops, self.seed = owner, num_crops, seed

    def __len__(self) -> int:
        return len(self.owner)

    def __getitem__(self, index: int) -> tuple[list[dict], list[dict]]:
        state = np.random.get_state()
        np.random.seed([self.seed, index])
        try:
            requests = [{} for _ in range(self.num_crops)]
            return [self.owner.prepare(index, r) for r in requests], requests
        finally:
            np.random.set_state(state)


def _collate_draws(items: list) -> tuple[dict, list[dict]]:
    return pseudo_collate([s for samples, _ in items for s in samples]), [r for _, reqs in items for r in reqs]
