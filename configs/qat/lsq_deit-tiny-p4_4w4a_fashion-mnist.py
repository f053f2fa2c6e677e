# Plain LSQ QAT W4A4 of the float DeiT-tiny of Fashion-MNIST (recipe: configs/_base_/qat.py): weights and
# activations quantized and trained together on the task loss, from the float checkpoint, one epoch
# (469 iterations of 128 images; train_cfg.max_iters=N for more).
#   python tools/train.py THIS_CONFIG        -> work_dirs/<name>/iter_469.pth
#   python tools/test.py THIS_CONFIG CKPT
_base_ = ['../fp/deit-tiny-p4_fashion-mnist.py', '../_base_/qat.py']
model = dict(
    _delete_=True,
    type='QAT',
    architecture=_base_.model,
    checkpoint='checkpoints/deit-tiny-p4_fashion-mnist-c4de163e.pth',
    qconfig=_base_.qat_qconfig)
optim_wrapper = _base_.qat_optim_wrapper
param_scheduler = []
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=469, val_interval=469)
default_hooks = _base_.qat_default_hooks
custom_hooks = _base_.qat_custom_hooks
log_processor = dict(by_epoch=False)
