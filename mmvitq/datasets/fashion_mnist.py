"""Fashion-MNIST from Debian's `dataset-fashion-mnist` package, unpacked where mmpretrain's FashionMNIST reads it.

No new loader: configs use mmpretrain's `FashionMNIST(data_root=..., download=False)`; this module
only unpacks the packaged .gz files (Debian recompressed them, so mmpretrain's md5 sums of the .gz do
not apply) and checks each IDX header: magic number and item count (idempotent).
"""
import gzip
import os
import shutil
import struct

from mmpretrain.datasets import FashionMNIST

DEBIAN_DIR = '/usr/share/datasets/fashion-mnist'
INSTALL_HINT = 'install it with `apt-get install -y dataset-fashion-mnist` (make install does this as root)'


# IDX magic numbers (uint8 images of 3 dims, uint8 labels of 1 dim) and item counts per file.
EXPECTED = {
    'train-images-idx3-ubyte': (2051, 60000), 'train-labels-idx1-ubyte': (2049, 60000),
    't10k-images-idx3-ubyte': (2051, 10000), 't10k-labels-idx1-ubyte': (2049, 10000),
}


def _check_header(path: str, name: str) -> None:
    with open(path, 'rb') as f:
        magic, count = struct.unpack('>II', f.read(8))
    if (magic, count) != EXPECTED[name]:
        raise ValueError(f'{path}: IDX header (magic {magic}, {count} items) is not {EXPECTED[name]}')


def prepare_fashion_mnist(out_dir: str, src_dir: str = DEBIAN_DIR) -> list[str]:
    """Unpack the four IDX files into `out_dir`; return the paths written (none when already there)."""
    os.makedirs(out_dir, exist_ok=True)
    written = []
    for gz_name, _ in FashionMNIST.train_list + FashionMNIST.test_list:
        name = gz_name[:-len('.gz')]
        target = os.path.join(out_dir, name)
        if os.path.exists(target):
            continue
        source = os.path.join(src_dir, gz_name)
        if not os.path.exists(source):
            raise FileNotFoundError(f'Fashion-MNIST file {source} is missing: {INSTALL_HINT}')
        with gzip.open(source, 'rb') as src, open(target + '.part', 'wb') as dst:
            shutil.copyfileobj(src, dst)
        _check_header(target + '.part', name)
        os.replace(target + '.part', target)  # never leave a half-written file behind
        written.append(target)
    return written


def load_fashion_mnist(root: str, split: str) -> tuple:
    """(uint8 images [N, 28, 28], int labels [N], class names) of a prepared split, via mmpretrain's reader."""
    import numpy as np
    dataset = FashionMNIST(data_root=root, split=split, test_mode=split == 'test', download=False)
    infos = [dataset.get_data_info(i) for i in range(len(dataset))]
    return (np.stack([info['img'] for info in infos]), np.array([int(info['gt_label']) for info in infos]),
            dataset.CLASSES)
