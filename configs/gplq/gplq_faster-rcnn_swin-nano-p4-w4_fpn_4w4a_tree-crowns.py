# GPLQ W4A4 of the tree-crown detector's Swin backbone (FPN and heads stay float), the scenes recipe:
# one epoch on the detection losses with 4-bit activations, then weight PTQ and QwT on the training tiles.
_base_ = ['../fp/faster-rcnn_swin-nano-p4-w4_fpn_tree-crowns.py', '../_base_/qconfigs/gplq_w4a4.py']
model = dict(
    _delete_=True,
    type='GPLQ',
    architecture=_base_.model,
    teacher_checkpoint='checkpoints/faster-rcnn_swin-nano-p4-w4_fpn_tree-crowns-cf8c50a4.pth',
    qconfig=_base_.gplq_qconfig,
    feature_loss_weight=0.0)
optim_wrapper = dict(_delete_=True, optimizer=dict(type='AdamW', lr=1e-4, weight_decay=0.0))
param_scheduler = []
train_cfg = dict(_delete_=True, type='GPLQTrainLoop', stages=('activation', 'weight'), max_epochs=1,
                 calib_images=42)
test_cfg = dict(type='GPLQTestLoop', calib_images=42)
default_hooks = dict(checkpoint=dict(interval=100, by_epoch=False))
log_processor = dict(by_epoch=False)
