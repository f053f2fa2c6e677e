# GPLQ W4A4 of DeiT-S on ImageNet-1k (GPU users; data under data/imagenet as mmpretrain expects), from the
# official mmpretrain float weights (downloaded when training starts):
#   torchrun --nproc_per_node=4 tools/train.py THIS_CONFIG --launcher pytorch
_base_ = ['mmpretrain::deit/deit-small_4xb256_in1k.py', '../_base_/gplq.py']
custom_imports = dict(imports=['mmvitq'], allow_failed_imports=False)
model = dict(
    _delete_=True,
    type='GPLQ',
    architecture=_base_.model,
    teacher_checkpoint='https://download.openmmlab.com/mmclassification/v0/deit/'
    'deit-small_pt-4xb256_in1k_20220218-9425b9bb.pth',
    qconfig=_base_.gplq_qconfig,
    feature_loss_weight=1.0,
    pca_variance=0.6)
optim_wrapper = _base_.gplq_optim_wrapper
param_scheduler = []
train_cfg = dict(_delete_=True, type='GPLQTrainLoop', stages=('activation', 'weight'), max_epochs=1,
                 calib_images=512)
test_cfg = _base_.gplq_test_cfg
default_hooks = _base_.gplq_default_hooks
log_processor = dict(by_epoch=False)
custom_hooks = [dict(type='RandomStateHook')]
randomness = dict(seed=0)
