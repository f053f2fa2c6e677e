# Variation-aware QAT, W4A4, of the windowed ViT backbone of the Fashion-MNIST-scenes Mask R-CNN (simple feature
# pyramid and heads stay float), from the float detector, as for the Swin detector: the detection losses replace
# the distillation (no label bank), with the recipe's quantizers, module-dependent scales and oscillation
# regulariser; AdamW at the detector's fine-tuning rate 1e-4, cosine to 0 over 2 epochs (500 iterations).
#   python tools/train.py THIS_CONFIG ; python tools/test.py THIS_CONFIG work_dirs/<name>/iter_500.pth
_base_ = ['../fp/mask-rcnn_vit-nano-p8-w8_simple-fpn_fashion-mnist-scenes.py', '../_base_/vvtq.py',
          '../_base_/vvtq_det_scenes.py']
model = dict(
    _delete_=True,
    type='VVTQ',
    architecture=_base_.model,
    checkpoint='checkpoints/mask-rcnn_vit-nano-p8-w8_simple-fpn_fashion-mnist-scenes-e374497f.pth',
    qconfig=_base_.vvtq_qconfig,
    regularizer=_base_.vvtq_regularizer)
optim_wrapper = dict(_base_.vvtq_optim_wrapper, optimizer=_base_.vvtq_det_optimizer, clip_grad=dict(max_norm=10.0))
param_scheduler = _base_.vvtq_det_param_scheduler
train_cfg = _base_.vvtq_det_train_cfg
default_hooks = _base_.vvtq_det_default_hooks
custom_hooks = [dict(_base_.vvtq_custom_hooks[0], num_images=_base_.vvtq_det_init_images)
                ] + _base_.vvtq_custom_hooks[1:]
log_processor = dict(by_epoch=False)
