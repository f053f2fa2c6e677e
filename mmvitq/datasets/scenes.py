"""Fashion-MNIST scenes: real garments pasted on a canvas, as a COCO detection/instance-segmentation set.

Each scene holds `min_objects`..`max_objects` items at random scales and positions; a new item may
overlap earlier boxes by at most `max_iou`. Masks are the item's own pixels (what stays visible after
later pastes); boxes are the tight boxes of those masks; items left less than half visible are dropped.
Seeded: the same arguments give the same set. The annotation JSON is written last (atomically) and records the
settings, so a build killed half-way, or one with other settings, is never taken for this set
(`scenes_up_to_date`).
"""
import os
from typing import Sequence

import cv2
import numpy as np
from pycocotools import mask as mask_utils

from ..utils import write_json
from .coco_files import coco_up_to_date, forget


def _iou(a: Sequence[float], b: Sequence[float]) -> float:
    """IoU of two [x0, y0, x1, y1] boxes."""
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _tight_box(mask: np.ndarray) -> list[float]:
    ys, xs = np.nonzero(mask)
    return [float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)]


def make_scene(items: np.ndarray, labels: np.ndarray, rng: np.random.Generator, canvas: int, min_objects: int,
               max_objects: int, scale_range: tuple[float, float], max_iou: float,
               threshold: int = 24) -> tuple[np.ndarray, list[tuple[int, np.ndarray]]]:
    """One scene: (uint8 image [canvas, canvas], [(category index, visible bool mask)])."""
    image = np.zeros((canvas, canvas), np.uint8)
    placed: list[list] = []  # [category, visible mask, box, full area]
    for _ in range(int(rng.integers(min_objects, max_objects + 1))):
        for _attempt in range(20):
            i = int(rng.integers(len(items)))
            size = min(canvas, int(round(items.shape[1] * rng.uniform(*scale_range))))
            item = cv2.resize(items[i], (size, size), interpolation=cv2.INTER_LINEAR)
            y, x = (int(v) for v in rng.integers(0, canvas - size + 1, size=2))
            mask = np.zeros((canvas, canvas), bool)
            mask[y:y + size, x:x + size] = item > threshold
            if not mask.any():
                continue
            box = _tight_box(mask)
            if all(_iou(box, p[2]) <= max_iou for p in placed):
                image[mask] = item[mask[y:y + size, x:x + size]]
                for p in placed:
                    p[1] = p[1] & ~mask
                placed.append([int(labels[i]), mask, box, int(mask.sum())])
                break
    return image, [(c, m) for c, m, _, area in placed if m.sum() >= 0.5 * area]


def scene_settings(num_scenes: int, source: str, canvas: int = 128, min_objects: int = 1, max_objects: int = 6,
                   scale_range: tuple[float, float] = (1.0, 2.5), max_iou: float = 0.3, seed: int = 0) -> dict:
    """What a scene set is built from, as recorded in its annotation file (`source`: the items' split)."""
    return dict(num_scenes=num_scenes, source=source, canvas=canvas, min_objects=min_objects, max_objects=max_objects,
                scale_range=list(scale_range), max_iou=max_iou, seed=seed, version=1)


def scenes_up_to_date(out_dir: str, split: str, settings: dict) -> bool:
    """Whether out_dir holds the complete `split` built with `settings` (see `scene_settings`)."""
    return coco_up_to_date(os.path.join(out_dir, 'annotations', f'{split}.json'), out_dir, settings)


def build_scenes(items: np.ndarray, labels: np.ndarray, classes: Sequence[str], num_scenes: int, out_dir: str,
                 split: str, canvas: int = 128, min_objects: int = 1, max_objects: int = 6,
                 scale_range: tuple[float, float] = (1.0, 2.5), max_iou: float = 0.3, seed: int = 0,
                 source: str = 'unknown') -> dict:
    """Write `num_scenes` PNGs to out_dir/split/ and COCO json to out_dir/annotations/split.json (last)."""
    rng = np.random.default_rng(seed)
    ann_file = os.path.join(out_dir, 'annotations', f'{split}.json')
    forget(ann_file)
    os.makedirs(os.path.join(out_dir, split), exist_ok=True)
    settings = scene_settings(num_scenes, source, canvas, min_objects, max_objects, scale_range, max_iou, seed)
    coco = dict(info=dict(settings=settings), images=[], annotations=[],
                categories=[dict(id=i + 1, name=n) for i, n in enumerate(classes)])
    for image_id in range(1, num_scenes + 1):
        image, objects = make_scene(items, labels, rng, canvas, min_objects, max_objects, scale_range, max_iou)
        file_name = f'{split}/{image_id:06d}.png'
        cv2.imwrite(os.path.join(out_dir, file_name), image)
        coco['images'].append(dict(id=image_id, file_name=file_name, width=canvas, height=canvas))
        for category, mask in objects:
            x0, y0, x1, y1 = _tight_box(mask)
            rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
            rle['counts'] = rle['counts'].decode('ascii')
            coco['annotations'].append(
                dict(id=len(coco['annotations']) + 1, image_id=image_id, category_id=category + 1,
                     bbox=[x0, y0, x1 - x0, y1 - y0], area=float(mask.sum()), segmentation=rle, iscrowd=0))
    write_json(ann_file, coco)
    return coco
