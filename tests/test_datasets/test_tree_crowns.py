"""Tree-crown tiles from the deepforest wheel: every human-drawn box accounted for, clipped into its tile."""
import os

import pytest

from mmvitq.datasets.tree_crowns import build_tree_crowns, deepforest_data_dir, read_voc


@pytest.fixture(scope='module')
def trees(tmp_path_factory):
    out = tmp_path_factory.mktemp('trees')
    return out, build_tree_crowns(str(out))


def test_source_has_the_annotated_images():
    data = deepforest_data_dir()
    boxes = {f: len(read_voc(os.path.join(data, f))[1]) for f in os.listdir(data) if f.endswith('.xml')}
    assert len(boxes) == 4 and 900 <= sum(boxes.values()) <= 1000


def test_tiles_hold_clipped_boxes(trees):
    out, sets = trees
    data = deepforest_data_dir()
    source_boxes = sum(len(read_voc(os.path.join(data, f))[1]) for f in os.listdir(data) if f.endswith('.xml'))
    kept = sum(len(s['annotations']) for s in sets.values())
    assert 0.9 * source_boxes <= kept <= source_boxes  # only crowns cut mostly outside a tile are dropped
    tiles = len(sets['train']['images']) + len(sets['val']['images'])
    assert len(sets['val']['images']) == (tiles + 4) // 5
    for coco in sets.values():
        sizes = {img['id']: (img['width'], img['height']) for img in coco['images']}
        for ann in coco['annotations']:
            x, y, w, h = ann['bbox']
            width, height = sizes[ann['image_id']]
            assert 0 <= x and 0 <= y and w > 0 and h > 0 and x + w <= width and y + h <= height
        for img in coco['images']:
            assert os.path.exists(out / img['file_name'])


def test_mmdet_reads_the_tiles(trees):
    from mmdet.datasets import CocoDataset
    out, sets = trees
    ds = CocoDataset(data_root=str(out), ann_file='annotations/val.json', data_prefix=dict(img=''),
                     metainfo=dict(classes=('Tree', )), pipeline=[], test_mode=True)
    assert len(ds) == len(sets['val']['images'])
