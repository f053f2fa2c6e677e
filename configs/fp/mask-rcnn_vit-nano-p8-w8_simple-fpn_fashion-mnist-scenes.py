# Float baseline: Mask R-CNN with a small plain ViT and ViTDet's simple feature pyramid on Fashion-MNIST scenes
# (boxes and masks, 10 classes), trained from scratch (no offline weights exist): python tools/train.py THIS_CONFIG
_base_ = [
    '../_base_/models/mask-rcnn_vit-nano-p8-w8_simple-fpn.py', '../_base_/datasets/fashion_mnist_scenes.py',
    '../_base_/schedules/det_adamw.py', '../_base_/det_runtime.py'
]
model = dict(data_preprocessor={{_base_.data_preprocessor}},
             roi_head=dict(bbox_head=dict(num_classes=10), mask_head=dict(num_classes=10)))
# As ViTDet, no weight decay on normalisation layers (the ViT's ln1/ln2 too) and the position embedding.
optim_wrapper = dict(paramwise_cfg=dict(norm_decay_mult=0., custom_keys={'pos_embed': dict(decay_mult=0.)}))
