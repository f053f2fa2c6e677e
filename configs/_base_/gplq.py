# GPLQ's recipe, referenced by the configs under configs/gplq/ as `_base_.gplq_*` (variables, so they do not
# clash with the float config's own keys among the bases):
# - 4-bit activations with per-channel symmetric LSQ scales (min-max init; the attention probabilities on an
#   unsigned grid), 4-bit per-channel symmetric weights set by percentile in stage 2, patch embedding and
#   head at 8 bits;
# - stage 1: AdamW at a small constant learning rate, no weight decay, one epoch, iteration-based with a
#   checkpoint every 100 iterations (a run killed mid-epoch resumes mid-epoch);
# - the quantizer init, the PCA fit and the QwT fit each on 512 training images.
gplq_qconfig = dict(
    w_bits=4,
    a_bits=4,
    weight=dict(type='UniformQuantizer', granularity='channel', symmetric=True, observer='percentile'),
    act=dict(type='LSQQuantizer', granularity='channel', symmetric=True, init='minmax'),
    per_point=dict(softmax=dict(symmetric=False)))
gplq_optim_wrapper = dict(_delete_=True, optimizer=dict(type='AdamW', lr=1e-4, weight_decay=0.0))
gplq_train_cfg = dict(_delete_=True, type='GPLQTrainLoop', stages=('activation', 'weight'), max_epochs=1,
                      calib_images=512)
gplq_test_cfg = dict(type='GPLQTestLoop', calib_images=512)
gplq_default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=100, by_epoch=False, max_keep_ckpts=2,
                                          save_best=None))
