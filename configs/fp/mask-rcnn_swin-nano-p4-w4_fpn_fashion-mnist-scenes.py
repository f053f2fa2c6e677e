# Float baseline: Mask R-CNN with the small Swin on Fashion-MNIST scenes (boxes and masks, 10 classes),
# trained from scratch (no offline weights exist): python tools/train.py THIS_CONFIG
_base_ = [
    '../_base_/models/mask-rcnn_swin-nano-p4-w4_fpn.py', '../_base_/datasets/fashion_mnist_scenes.py',
    '../_base_/schedules/det_adamw.py', '../_base_/det_runtime.py'
]
model = dict(data_preprocessor={{_base_.data_preprocessor}},
             roi_head=dict(bbox_head=dict(num_classes=10), mask_head=dict(num_classes=10)))
