"""Fashion-MNIST from Debian's `dataset-fashion-mnist` package, unpacked where mmpretrain's FashionMNIST reads it.

No new loader: configs use mmpretrain's `FashionMNIST(data_root=..., download=False)`; this module
only unpacks the packaged .gz files (Debian recompressed them, so mmpretrain's md5 sums of the .gz do
not apply) and checks each IDX file: magic number, item count and size (idempotent: a complete file is kept, a
truncated or foreign one is unpacked again; each file is written under a temporary name and renamed).
"""
import gzip
import os
import shutil
import struct

from mmpretrain.datasets import FashionMNIST

from ..utils import atomic_path

DEBIAN_DIR = '/usr/share/datasets/fashion-mnist'
INSTALL_HINT = 'install it with `apt-get install -y dataset-fashion-mnist` (make install does this as root)'


# IDX magic numbers (uint8 images of 3 dims, uint8 labels of 1 dim) and item counts per file.
EXPECTED = {
    'train-images-idx3-ubyte': (2051, 60000), 'train-labels-idx1-ubyte': (2049, 60000),
    't10k-images-idx3-ubyte': (2051, 10000), 't10k-labels-idx1-ubyte': (2049, 10000),
}


def _check_header(path: str, name: str) -> None:
    """Raise ValueError unless `path` is the complete IDX file `name`: header and size."""
    magic, count = EXPECTED[name]
    size = 16 + count * 28 * 28 if magic == 2051 else 8 + count
    with open(path, 'rb') as f:
        header = f.read(8)
    found = struct.unpack('>II', header) if len(header) == 8 else None
    if found != (magic, count) or os.path.getsize(path) != size:
        raise ValueError(f'{path}: not the complete IDX file (header {found}, {os.path.getsize(path)} bytes; '
                         f'expected magic {magic}, {count} items, {size} bytes)')


def _complete(path: str, name: str) -> bool:
    try:
        _check_header(path, name)
    except (OSError, ValueError):
        return False
    return True


def prepare_fashion_mnist(out_dir: str, src_dir: str = DEBIAN_DIR) -> list[str]:
    """Unpack the four IDX files into `out_dir`; return the paths written (none when already there)."""
    os.makedirs(out_dir, exist_ok=True)
    written = []
    for gz_name, _ in FashionMNIST.train_list + FashionMNIST.test_list:
        name = gz_name[:-len('.gz')]
        target = os.path.join(out_dir, name)
        if _complete(target, name):
            continue
        source = os.path.join(src_dir, gz_name)
        if not os.path.exists(source):
            raise FileNotFoundError(f'Fashion-MNIST file {source} is missing: {INSTALL_HINT}')
        with atomic_path(target) as tmp:  # never leave a half-written file behind
            with gzip.open(source, 'rb') as src, open(tmp, 'wb') as dst:
                shutil.copyfileobj(src, dst)
            _check_header(tmp, name)
        written.append(target)
    return written


def load_fashion_mnist(root: str, split: str) -> tuple:
    """(uint8 images [N, 28, 28], int labels [N], class names) of a prepared split, via mmpretrain's reader."""
    import numpy as np
    dataset = FashionMNIST(data_root=root, split=split, test_mode=split == 'test', download=False)
    infos = [dataset.get_data_info(i) for i in range(len(dataset))]
    return (np.stack([info['img'] for info in infos]), np.array([int(info['gt_label']) for info in infos]),
            dataset.CLASSES)
