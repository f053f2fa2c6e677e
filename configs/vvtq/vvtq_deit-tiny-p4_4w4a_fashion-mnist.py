# Variation-aware QAT, W4A4, of the float DeiT-tiny of Fashion-MNIST (recipe: configs/_base_/vvtq.py), from the
# float checkpoint, distilled from it through a multi-crop label bank (4 crops per image, top-5 soft labels,
# built on first use into work_dirs/label_banks and shared by every config with the same teacher and crops).
# Crops cover 35-100% of the 28x28 image: at 4x4-pixel patches, smaller crops would be upscaled from 2x2 tokens.
#   python tools/train.py THIS_CONFIG         -> work_dirs/<name>/iter_*.pth, oscillation.json/.png
#   python tools/test.py THIS_CONFIG CKPT
_base_ = ['../fp/deit-tiny-p4_fashion-mnist.py', '../_base_/vvtq.py']
float_checkpoint = 'checkpoints/deit-tiny-p4_fashion-mnist-c4de163e.pth'
model = dict(
    _delete_=True,
    type='VVTQ',
    architecture=_base_.model,
    checkpoint=float_checkpoint,
    qconfig=_base_.vvtq_qconfig,
    regularizer=_base_.vvtq_regularizer)
train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='LabelBankDataset',
        dataset=dict(type=_base_.dataset_type, data_root=_base_.data_root, split='train', download=False,
                     pipeline=[]),
        pipeline=[dict(type='BankedResizedCrop', size=28, scale=(0.35, 1.0)), dict(type='PackInputs')],
        teacher=_base_.model,
        teacher_checkpoint=float_checkpoint,
        data_preprocessor=_base_.data_preprocessor,
        num_crops=4,
        topk=5))
optim_wrapper = _base_.vvtq_optim_wrapper
# 4 epochs of 469 iterations (batch 128), iteration-based so a killed run resumes mid-epoch.
param_scheduler = [dict(type='CosineAnnealingLR', by_epoch=False, begin=0, end=1876, eta_min=0.0)]
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=1876, val_interval=469)
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=469, by_epoch=False, max_keep_ckpts=2,
                                     save_best=None))
custom_hooks = _base_.vvtq_custom_hooks
log_processor = dict(by_epoch=False)
