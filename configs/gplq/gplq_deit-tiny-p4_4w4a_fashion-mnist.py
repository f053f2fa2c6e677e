# GPLQ W4A4 on the float DeiT-tiny of Fashion-MNIST: stage 1 trains one epoch with 4-bit activations
# (per-channel LSQ) and float weights against the frozen float teacher with the PCA feature loss;
# stage 2 quantizes the weights (per-channel, percentile) and fits the QwT block compensations.
#   python tools/train.py THIS_CONFIG        -> work_dirs/<name>/gplq_quantized.pth (both stages)
#   python tools/test.py THIS_CONFIG CKPT    -> top-1 (runs stage 2 first on a stage-1 checkpoint)
_base_ = ['../fp/deit-tiny-p4_fashion-mnist.py', '../_base_/qconfigs/gplq_w4a4.py']
model = dict(
    _delete_=True,
    type='GPLQ',
    architecture=_base_.model,
    teacher_checkpoint='checkpoints/deit-tiny-p4_fashion-mnist-c4de163e.pth',
    qconfig=_base_.gplq_qconfig,
    feature_loss_weight=1.0,
    pca_variance=0.6)
# AdamW at a small constant learning rate, no weight decay, one epoch.
optim_wrapper = dict(_delete_=True, optimizer=dict(type='AdamW', lr=1e-4, weight_decay=0.0))
param_scheduler = []
train_cfg = dict(_delete_=True, type='GPLQTrainLoop', stages=('activation', 'weight'), max_epochs=1,
                 calib_images=512)
test_cfg = dict(type='GPLQTestLoop', calib_images=512)
# Iteration-based: a checkpoint every 100 iterations, so a run killed mid-epoch resumes mid-epoch.
default_hooks = dict(checkpoint=dict(interval=100, by_epoch=False, save_best=None))
log_processor = dict(by_epoch=False)
