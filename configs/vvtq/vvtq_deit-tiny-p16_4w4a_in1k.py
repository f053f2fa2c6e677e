# Variation-aware QAT, W4A4, of DeiT-T on ImageNet-1k, the published recipe (GPU users; data under data/imagenet
# as mmpretrain expects), from the official mmpretrain float weights (downloaded when training starts):
# 150 epochs, AdamW lr 5e-4, batch 512 over 4 GPUs, soft labels of 4 random crops per image (top-5, marginal
# smoothing) in a label bank built by the float model before the first step; the oscillation regulariser.
#   torchrun --nproc_per_node=4 tools/train.py THIS_CONFIG --launcher pytorch
# W3A3 / W2A2: --cfg-options model.qconfig.w_bits=2 model.qconfig.a_bits=2
_base_ = ['mmpretrain::deit/deit-tiny_4xb256_in1k.py', '../_base_/vvtq.py']
custom_imports = dict(imports=['mmvitq'], allow_failed_imports=False)
float_checkpoint = ('https://download.openmmlab.com/mmclassification/v0/deit/'
                    'deit-tiny_pt-4xb256_in1k_20220218-13b382a0.pth')
# The crops carry soft labels: no Mixup/CutMix batch augments, which would overwrite them.
architecture = dict(_base_.model, train_cfg=None)
model = dict(
    _delete_=True,
    type='VVTQ',
    architecture=architecture,
    checkpoint=float_checkpoint,
    qconfig=_base_.vvtq_qconfig,
    regularizer=_base_.vvtq_regularizer)
train_dataloader = dict(
    batch_size=128,
    dataset=dict(
        _delete_=True,
        type='LabelBankDataset',
        dataset=dict(type='ImageNet', data_root='data/imagenet', split='train', pipeline=[]),
        pipeline=[
            dict(type='LoadImageFromFile'),
            dict(type='BankedResizedCrop', size=224, interpolation='bicubic'),
            dict(type='PackInputs')
        ],
        teacher=architecture,
        teacher_checkpoint=float_checkpoint,
        data_preprocessor=_base_.data_preprocessor,
        num_crops=4,
        topk=5,
        batch_images=64))
optim_wrapper = _base_.vvtq_optim_wrapper
param_scheduler = [dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=150, eta_min=0.0,
                        convert_to_iter_based=True)]
train_cfg = dict(by_epoch=True, max_epochs=150, val_interval=5)
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=2, save_best='auto'))
custom_hooks = _base_.vvtq_custom_hooks
auto_scale_lr = dict(base_batch_size=512)
randomness = dict(seed=0)
