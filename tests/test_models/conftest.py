"""Small classifiers of each supported family, briefly trained on a synthetic 10-class task.

A randomly initialised ViT maps every input to nearly the same features, so its argmax flips at the
slightest noise; a briefly trained one makes real decisions, which is what W8A8 must preserve.
"""
import pytest
import torch
import torch.nn.functional as F

NUM_CLASSES = 10


class Task:
    """Images = one fixed random template per class + strong noise; `seed` picks the samples only."""

    templates = torch.randn(NUM_CLASSES, 3, 32, 32, generator=torch.Generator().manual_seed(1234))

    def __init__(self, seed: int = 0):
        self.g = torch.Generator().manual_seed(seed)

    def batch(self, n: int):
        y = torch.randint(0, NUM_CLASSES, (n, ), generator=self.g)
        return self.templates[y] + 1.5 * torch.randn(n, 3, 32, 32, generator=self.g), y


def train_briefly(model: torch.nn.Module, forward, steps: int = 80, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    task = Task(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model.train()
    for _ in range(steps):
        x, y = task.batch(32)
        loss = F.cross_entropy(forward(model, x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


def mmpretrain_forward(model, x):
    return model(x, mode='tensor')


def timm_forward(model, x):
    return model(x)


DEIT_TINY = dict(type='ImageClassifier',
                 backbone=dict(type='VisionTransformer', arch='deit-tiny', img_size=32, patch_size=4,
                               drop_path_rate=0.0),
                 neck=None,
                 head=dict(type='VisionTransformerClsHead', num_classes=NUM_CLASSES, in_channels=192))
SWIN_SMALL = dict(type='ImageClassifier',
                  backbone=dict(type='SwinTransformer', arch=dict(embed_dims=48, depths=[2, 2], num_heads=[2, 4]),
                                img_size=32, window_size=4, drop_path_rate=0.0, out_indices=(1, )),
                  neck=dict(type='GlobalAveragePooling'),
                  head=dict(type='LinearClsHead', num_classes=NUM_CLASSES, in_channels=96))


def build_mmpretrain(cfg: dict) -> torch.nn.Module:
    import mmvitq  # noqa: F401  (registers the quantized backbones)
    from mmengine.registry import DefaultScope
    from mmpretrain.registry import MODELS
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MODELS.build(cfg)
    model.init_weights()
    return model


@pytest.fixture(scope='session')
def deit_tiny():
    return train_briefly(build_mmpretrain(DEIT_TINY), mmpretrain_forward)


@pytest.fixture(scope='session')
def swin_small():
    return train_briefly(build_mmpretrain(SWIN_SMALL), mmpretrain_forward)


@pytest.fixture(scope='session')
def timm_vit():
    import timm
    torch.manual_seed(0)
    model = timm.create_model('vit_tiny_patch16_224', pretrained=False, img_size=32, patch_size=4,
                              num_classes=NUM_CLASSES)
    return train_briefly(model, timm_forward)


@pytest.fixture(scope='session')
def timm_swin():
    import timm
    torch.manual_seed(0)
    model = timm.create_model('swin_tiny_patch4_window7_224', pretrained=False, img_size=32, window_size=4,
                              embed_dim=48, depths=(2, 2), num_heads=(2, 4), num_classes=NUM_CLASSES)
    return train_briefly(model, timm_forward)
