# GPLQ W4A4 on the float DeiT-tiny of Fashion-MNIST: stage 1 trains one epoch with 4-bit activations
# and float weights against the frozen float teacher with the PCA feature loss; stage 2 quantizes the
# weights and fits the QwT block compensations (recipe: configs/_base_/gplq.py).
#   python tools/train.py THIS_CONFIG        -> work_dirs/<name>/gplq_w4a4.pth (both stages)
#   python tools/test.py THIS_CONFIG CKPT    -> top-1 (runs stage 2 first on a stage-1 or float checkpoint)
_base_ = ['../fp/deit-tiny-p4_fashion-mnist.py', '../_base_/gplq.py']
model = dict(
    _delete_=True,
    type='GPLQ',
    architecture=_base_.model,
    teacher_checkpoint='checkpoints/deit-tiny-p4_fashion-mnist-c4de163e.pth',
    qconfig=_base_.gplq_qconfig,
    feature_loss_weight=1.0,
    pca_variance=0.6)
optim_wrapper = _base_.gplq_optim_wrapper
param_scheduler = []
train_cfg = _base_.gplq_train_cfg
test_cfg = _base_.gplq_test_cfg
default_hooks = _base_.gplq_default_hooks
log_processor = dict(by_epoch=False)
