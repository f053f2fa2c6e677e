# Variation-aware QAT, W4A4, of the float Swin of Fashion-MNIST (2x2 patches, 7x7 windows; recipe:
# configs/_base_/vvtq.py, head-wise scales in every window attention), from the float checkpoint, distilled from
# it through the multi-crop label bank, 4 epochs (configs/_base_/vvtq_fashion_mnist.py).
#   python tools/train.py THIS_CONFIG         -> work_dirs/<name>/iter_*.pth, oscillation.json/.png
#   python tools/test.py THIS_CONFIG CKPT
_base_ = ['../fp/swin-tiny-p2_fashion-mnist.py', '../_base_/vvtq.py', '../_base_/vvtq_fashion_mnist.py']
float_checkpoint = 'checkpoints/swin-tiny-p2_fashion-mnist-b4eed4fa.pth'
model = dict(
    _delete_=True,
    type='VVTQ',
    architecture=_base_.model,
    checkpoint=float_checkpoint,
    qconfig=_base_.vvtq_qconfig,
    regularizer=_base_.vvtq_regularizer)
train_dataloader = dict(dataset=dict(_base_.vvtq_fmnist_bank, _delete_=True, teacher=_base_.model,
                                     teacher_checkpoint=float_checkpoint, data_preprocessor=_base_.data_preprocessor))
optim_wrapper = _base_.vvtq_optim_wrapper
param_scheduler = _base_.vvtq_fmnist_param_scheduler
train_cfg = _base_.vvtq_fmnist_train_cfg
default_hooks = _base_.vvtq_fmnist_default_hooks
custom_hooks = _base_.vvtq_custom_hooks
log_processor = dict(by_epoch=False)
