# Float baseline: the small-Swin Mask R-CNN without its mask branch (tree crowns have boxes only) on the tree-crown
# tiles, trained from scratch (no offline weights exist): python tools/train.py THIS_CONFIG
_base_ = [
    '../_base_/models/mask-rcnn_swin-nano-p4-w4_fpn.py', '../_base_/datasets/tree_crowns.py',
    '../_base_/schedules/det_adamw.py', '../_base_/det_runtime.py'
]
model = dict(data_preprocessor={{_base_.data_preprocessor}},
             roi_head=dict(bbox_head=dict(num_classes=1), mask_roi_extractor=None, mask_head=None))
# 42 tiles with crowns make 21 iterations per epoch: more epochs than the scenes, a shorter warm-up.
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=100),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=0, eta_min=1e-5, convert_to_iter_based=True),
]
train_cfg = dict(max_epochs=24, val_interval=4)
