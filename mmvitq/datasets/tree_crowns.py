"""Tree crowns: the human-annotated aerial photos inside the deepforest wheel, tiled into a COCO box set.

The wheel (`pip install --no-deps deepforest`, MIT licence) is never imported: its data/ folder is
located with importlib and read as files. Four images carry Pascal VOC boxes (~950 crowns; one image
labels them Alive/Dead, mapped here to the single class 'Tree'). Images are cut into non-overlapping
tiles; boxes are clipped to their tile and kept when at least `min_visible` of their area lies inside.
Every `val_every`-th tile goes to the validation split. The annotation JSONs are written last (atomically)
and record the settings and source files, so a build killed half-way is never taken for a complete set
(`tree_crowns_up_to_date`).
"""
import importlib.util
import os
import xml.etree.ElementTree as ET

import cv2

from ..utils import write_json
from .coco_files import coco_up_to_date, forget

CLASSES = ('Tree', )
INSTALL_HINT = 'install the deepforest wheel without its dependencies: pip install --no-deps deepforest==2.1.0'


def deepforest_data_dir() -> str:
    """The data/ folder of the installed deepforest package, found without importing it."""
    spec = importlib.util.find_spec('deepforest')
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f'deepforest is not installed: {INSTALL_HINT}')
    return os.path.join(list(spec.submodule_search_locations)[0], 'data')


def read_voc(xml_path: str) -> tuple[str, list[list[float]]]:
    """(image path, [[x0, y0, x1, y1], ...]) of one Pascal VOC annotation file."""
    root = ET.parse(xml_path).getroot()
    folder = os.path.dirname(xml_path)
    image = os.path.join(folder, root.findtext('filename'))
    png = os.path.splitext(image)[0] + '.png'  # OSBS_029's XML names a GeoTIFF; the wheel has it as PNG too
    image = png if os.path.exists(png) else image
    boxes = [[float(obj.findtext(f'bndbox/{k}')) for k in ('xmin', 'ymin', 'xmax', 'ymax')]
             for obj in root.findall('object')]
    return image, boxes


def tree_crown_settings(data_dir: str | None = None, tile: int = 400, min_visible: float = 0.5,
                        val_every: int = 5) -> dict:
    """What the tree-crown tiles are built from: the settings and each annotation file's name and size."""
    data_dir = data_dir or deepforest_data_dir()
    names = sorted(f for f in os.listdir(data_dir) if f.endswith('.xml'))
    sources = {f: os.path.getsize(os.path.join(data_dir, f)) for f in names}
    return dict(tile=tile, min_visible=min_visible, val_every=val_every, sources=sources, version=1)


def tree_crowns_up_to_date(out_dir: str, settings: dict) -> bool:
    """Whether out_dir holds both complete splits built with `settings` (see `tree_crown_settings`)."""
    return all(coco_up_to_date(os.path.join(out_dir, 'annotations', f'{split}.json'), out_dir, settings)
               for split in ('train', 'val'))


def build_tree_crowns(out_dir: str, data_dir: str | None = None, tile: int = 400, min_visible: float = 0.5,
                      val_every: int = 5) -> dict[str, dict]:
    """Write tiles to out_dir/images/ and COCO json to out_dir/annotations/{train,val}.json (last)."""
    data_dir = data_dir or deepforest_data_dir()
    settings = tree_crown_settings(data_dir, tile, min_visible, val_every)
    for split in ('train', 'val'):
        forget(os.path.join(out_dir, 'annotations', f'{split}.json'))
    os.makedirs(os.path.join(out_dir, 'images'), exist_ok=True)
    sets = {s: dict(info=dict(settings=settings), images=[], annotations=[], categories=[dict(id=1, name='Tree')])
            for s in ('train', 'val')}
    tile_index = 0
    for xml_name in sorted(f for f in os.listdir(data_dir) if f.endswith('.xml')):
        image_path, boxes = read_voc(os.path.join(data_dir, xml_name))
        image = cv2.imread(image_path, cv2.IMREAD_COLOR)
        if image is None:
            raise FileNotFoundError(f'cannot read {image_path}')
        height, width = image.shape[:2]
        for ty in range(0, height, tile):
            for tx in range(0, width, tile):
                crop = image[ty:ty + tile, tx:tx + tile]
                split = 'val' if tile_index % val_every == 0 else 'train'
                tile_index += 1
                coco = sets[split]
                image_id = len(coco['images']) + 1
                file_name = f'images/{os.path.splitext(xml_name)[0]}_{ty}_{tx}.png'
                cv2.imwrite(os.path.join(out_dir, file_name), crop)
                coco['images'].append(dict(id=image_id, file_name=file_name, width=crop.shape[1],
                                           height=crop.shape[0]))
                for x0, y0, x1, y1 in boxes:
                    cx0, cy0 = max(x0, tx), max(y0, ty)
                    cx1, cy1 = min(x1, tx + crop.shape[1]), min(y1, ty + crop.shape[0])
                    if cx1 <= cx0 or cy1 <= cy0 or (cx1 - cx0) * (cy1 - cy0) < min_visible * (x1 - x0) * (y1 - y0):
                        continue
                    w, h = cx1 - cx0, cy1 - cy0
                    coco['annotations'].append(dict(id=len(coco['annotations']) + 1, image_id=image_id, category_id=1,
                                                    bbox=[cx0 - tx, cy0 - ty, w, h], area=w * h, iscrowd=0))
    for split, coco in sets.items():
        write_json(os.path.join(out_dir, 'annotations', f'{split}.json'), coco)
    return sets
