"""Fashion-MNIST preparation: mmpretrain's own FashionMNIST dataset reads the result, full size and balanced."""
import collections
import os

import pytest

from mmvitq.datasets import prepare_fashion_mnist


def test_prepared_fashion_mnist_is_read_by_mmpretrain(tmp_path):
    from mmpretrain.datasets import FashionMNIST
    written = prepare_fashion_mnist(str(tmp_path))
    assert len(written) == 4 and prepare_fashion_mnist(str(tmp_path)) == []  # idempotent
    for split, size in (('train', 60000), ('test', 10000)):
        # mmpretrain 1.2.0 picks the files by test_mode, not split: configs must set both.
        ds = FashionMNIST(data_root=str(tmp_path), split=split, test_mode=split == 'test', download=False)
        assert len(ds) == size
        labels = collections.Counter(int(ds.get_data_info(i)['gt_label']) for i in range(size))
        assert labels == {c: size // 10 for c in range(10)}  # Fashion-MNIST is exactly balanced
        img = ds.get_data_info(0)['img']
        assert img.shape == (28, 28) and img.dtype.name == 'uint8' and img.max() > 0


def test_missing_source_names_the_package(tmp_path):
    with pytest.raises(FileNotFoundError, match='apt-get install -y dataset-fashion-mnist'):
        prepare_fashion_mnist(str(tmp_path / 'out'), src_dir=str(tmp_path / 'nowhere'))
    assert not os.listdir(tmp_path / 'out')
