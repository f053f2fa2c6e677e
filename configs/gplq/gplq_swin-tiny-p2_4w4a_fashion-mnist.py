# GPLQ W4A4 on the float Swin of Fashion-MNIST (2x2 patches, 7x7 windows): the ViT recipe, the PCA feature
# loss on the pooled last-stage features (configs/_base_/gplq.py).
#   python tools/train.py THIS_CONFIG ; python tools/test.py THIS_CONFIG work_dirs/<name>/gplq_w4a4.pth
_base_ = ['../fp/swin-tiny-p2_fashion-mnist.py', '../_base_/gplq.py']
model = dict(
    _delete_=True,
    type='GPLQ',
    architecture=_base_.model,
    teacher_checkpoint='checkpoints/swin-tiny-p2_fashion-mnist-b4eed4fa.pth',
    qconfig=_base_.gplq_qconfig,
    feature_loss_weight=1.0,
    pca_variance=0.6)
optim_wrapper = _base_.gplq_optim_wrapper
param_scheduler = []
train_cfg = _base_.gplq_train_cfg
test_cfg = _base_.gplq_test_cfg
default_hooks = _base_.gplq_default_hooks
log_processor = dict(by_epoch=False)
