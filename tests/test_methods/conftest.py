"""Fixtures of the method tests on the two-layer ViT of tiny_vit.py."""
import pytest
from mmengine.registry import DefaultScope

from .tiny_vit import save_float_checkpoint


@pytest.fixture
def mmpretrain_scope():
    """Build configs in mmpretrain's default scope (the ViT's registry)."""
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        yield


@pytest.fixture(scope='module')
def float_ckpt(tmp_path_factory):
    """The ViT's float checkpoint with a random (not zeroed) head, so its logits differ between images."""
    return save_float_checkpoint(tmp_path_factory.mktemp('float') / 'float.pth', head_std=0.5)
