# GPLQ W4A4 of the tree-crown detector's Swin backbone (FPN and heads stay float), the scenes recipe:
# one epoch on the detection losses with 4-bit activations, then weight PTQ and QwT on the 42 training tiles.
_base_ = ['../fp/faster-rcnn_swin-nano-p4-w4_fpn_tree-crowns.py', '../_base_/gplq.py']
model = dict(
    _delete_=True,
    type='GPLQ',
    architecture=_base_.model,
    teacher_checkpoint='checkpoints/faster-rcnn_swin-nano-p4-w4_fpn_tree-crowns-cf8c50a4.pth',
    qconfig=_base_.gplq_qconfig,
    feature_loss_weight=0.0)
optim_wrapper = _base_.gplq_optim_wrapper
param_scheduler = []
train_cfg = dict(_base_.gplq_train_cfg, calib_images=42)
test_cfg = dict(_base_.gplq_test_cfg, calib_images=42)
default_hooks = _base_.gplq_default_hooks
log_processor = dict(by_epoch=False)
