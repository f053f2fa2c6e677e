# ViTDet-B recipe for GPU users (COCO under data/coco; MAE ViT-B weights downloaded when training starts):
# Mask R-CNN, ViT-B/16 + simple feature pyramid, large-scale jitter at 1024x1024, batch 64 (16 GPUs x 4), AdamW
# lr 1e-4, betas (0.9, 0.999), weight decay 0.1 (none on norms and the position embedding), layer-wise lr decay
# 0.7, drop path 0.1, mixed precision, 184,375 iterations (100 epochs) with 250 warm-up iterations and x0.1 at
# 163,889 and 177,546. ViTDet reports 51.6 box / 45.9 mask AP with relative positions (not built here).
#   torchrun --nnodes 2 --nproc_per_node 8 ... tools/train.py THIS_CONFIG --launcher pytorch
_base_ = ['../_base_/models/mask-rcnn_vit-b-p16-w14_simple-fpn.py', 'mmdet::common/lsj-100e_coco-instance.py']
custom_imports = dict(imports=['mmvitq'], allow_failed_imports=False)
runner_type = 'mmvitq.Runner'
max_iters = 184375
train_dataloader = dict(batch_size=4, num_workers=8, sampler=dict(type='InfiniteSampler'),
                        dataset=dict(_delete_=True, **_base_.train_dataloader.dataset.dataset))
optim_wrapper = dict(
    _delete_=True,
    type='AmpOptimWrapper',
    constructor='BackboneLayerDecayOptimWrapperConstructor',
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.1),
    paramwise_cfg=dict(layer_decay_rate=0.7, norm_decay_mult=0., custom_keys={'pos_embed': dict(decay_mult=0.)}))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=250),
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=max_iters, milestones=[163889, 177546], gamma=0.1)
]
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=max_iters, val_interval=5000)
default_hooks = dict(checkpoint=dict(by_epoch=False, interval=5000, max_keep_ckpts=2))
log_processor = dict(by_epoch=False)
auto_scale_lr = dict(base_batch_size=64)
