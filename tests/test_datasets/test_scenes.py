"""Fashion-MNIST scenes: counts, valid boxes, masks inside their boxes, readable by pycocotools and mmdet."""
import json

import numpy as np
import pytest
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from mmvitq.datasets import build_scenes, load_fashion_mnist, prepare_fashion_mnist


@pytest.fixture(scope='module')
def test_items(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('fmnist'))
    prepare_fashion_mnist(root)
    items, labels, classes = load_fashion_mnist(root, 'test')
    return items[:500], labels[:500], classes


def test_scenes_are_valid_coco(test_items, tmp_path):
    items, labels, classes = test_items
    coco = build_scenes(items, labels, classes, 40, str(tmp_path), 'val', canvas=96, max_objects=5, seed=3)
    assert len(coco['images']) == 40 and len(coco['categories']) == 10
    per_image = np.bincount([a['image_id'] for a in coco['annotations']], minlength=41)[1:]
    assert per_image.max() <= 5 and per_image.mean() >= 1.5  # 1..5 placed, a few occluded ones dropped
    for ann in coco['annotations']:
        x, y, w, h = ann['bbox']
        assert 0 <= x < x + w <= 96 and 0 <= y < y + h <= 96 and w > 0 and h > 0
        mask = mask_utils.decode(ann['segmentation']).astype(bool)
        ys, xs = np.nonzero(mask)
        assert mask.sum() == ann['area'] > 0
        assert (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) == (x, y, x + w, y + h)  # the tight mask box
        assert 1 <= ann['category_id'] <= 10
    api = COCO(str(tmp_path / 'annotations' / 'val.json'))
    assert len(api.getImgIds()) == 40 and len(api.getAnnIds()) == len(coco['annotations'])
    # Seeded: the same arguments give the same set.
    again = build_scenes(items, labels, classes, 40, str(tmp_path / 'again'), 'val', canvas=96, max_objects=5,
                         seed=3)
    assert json.dumps(again) == json.dumps(coco)


def test_masks_hold_the_pasted_garment_pixels(test_items, tmp_path):
    import cv2
    items, labels, classes = test_items
    coco = build_scenes(items, labels, classes, 10, str(tmp_path), 'train', canvas=64, seed=0)
    for img in coco['images']:
        image = cv2.imread(str(tmp_path / img['file_name']), cv2.IMREAD_GRAYSCALE)
        union = np.zeros_like(image, bool)
        for ann in (a for a in coco['annotations'] if a['image_id'] == img['id']):
            mask = mask_utils.decode(ann['segmentation']).astype(bool)
            assert (image[mask] > 0).all()  # a mask covers garment pixels only
            assert not (union & mask).any()  # visible masks do not overlap
            union |= mask


def test_mmdet_reads_the_scenes(test_items, tmp_path):
    from mmdet.datasets import CocoDataset
    items, labels, classes = test_items
    coco = build_scenes(items, labels, classes, 8, str(tmp_path), 'val', canvas=64, seed=1)
    ds = CocoDataset(data_root=str(tmp_path), ann_file='annotations/val.json', data_prefix=dict(img=''),
                     metainfo=dict(classes=tuple(classes)), pipeline=[], filter_cfg=dict(filter_empty_gt=False),
                     test_mode=True)
    assert len(ds) == 8
    assert sum(len(ds.get_data_info(i)['instances']) for i in range(8)) == len(coco['annotations'])
