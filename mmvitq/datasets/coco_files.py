"""Generated COCO sets that are complete or rebuilt: the annotation JSON, written last and atomically, records the
settings it was built from; a set is up to date only when that record matches and every image it lists exists."""
import json
import os
import os.path as osp
from typing import Any, Mapping


def coco_up_to_date(ann_file: str, root: str, settings: Mapping[str, Any]) -> bool:
    """Whether `ann_file` is a complete set built with `settings`: readable, the same `info.settings`, and every
    image it names present (non-empty) under `root`."""
    try:
        with open(ann_file) as f:
            coco = json.load(f)
    except (OSError, ValueError):
        return False
    if coco.get('info', {}).get('settings') != json.loads(json.dumps(dict(settings))):
        return False
    return all(osp.isfile(p) and osp.getsize(p) > 0 for p in (osp.join(root, i['file_name']) for i in coco['images']))


def forget(ann_file: str) -> None:
    """Remove an annotation file before its images are rewritten, so a build killed half-way is never taken
    for a complete set."""
    if osp.exists(ann_file):
        os.remove(ann_file)
