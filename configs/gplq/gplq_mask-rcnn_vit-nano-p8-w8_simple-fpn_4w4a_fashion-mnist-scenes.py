# GPLQ W4A4 of the windowed ViT backbone of the Fashion-MNIST-scenes Mask R-CNN (simple feature pyramid and heads
# stay float): stage 1 trains one epoch with 4-bit activations on the detection losses only (GPLQ drops the PCA
# term for detection), stage 2 quantizes the weights and fits the QwT block compensations.
#   python tools/train.py THIS_CONFIG ; python tools/test.py THIS_CONFIG work_dirs/<name>/gplq_w4a4.pth
_base_ = ['../fp/mask-rcnn_vit-nano-p8-w8_simple-fpn_fashion-mnist-scenes.py', '../_base_/gplq.py']
model = dict(
    _delete_=True,
    type='GPLQ',
    architecture=_base_.model,
    teacher_checkpoint='checkpoints/mask-rcnn_vit-nano-p8-w8_simple-fpn_fashion-mnist-scenes-e374497f.pth',
    qconfig=_base_.gplq_qconfig,
    feature_loss_weight=0.0)
optim_wrapper = _base_.gplq_optim_wrapper
param_scheduler = []
train_cfg = dict(_base_.gplq_train_cfg, calib_images=256)
test_cfg = dict(_base_.gplq_test_cfg, calib_images=256)
default_hooks = _base_.gplq_default_hooks
log_processor = dict(by_epoch=False)
