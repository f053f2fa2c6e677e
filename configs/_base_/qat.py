# Plain LSQ QAT (Esser et al., ICLR 2020), referenced by the configs under configs/qat/ as `_base_.qat_*`:
# - weights and activations on LSQ quantizers, every scale trained with the weights on the task loss alone;
# - the quantizers as GPLQ's (configs/_base_/gplq.py), so the baseline differs from GPLQ only by the method:
#   per-channel symmetric scales initialised by min-max, attention probabilities on an unsigned grid, patch
#   embedding and head at 8 bits (LSQ's paper: per-tensor scales, 2 * mean(|x|) / sqrt(Qp) init, `init='lsq'`);
# - AdamW at a constant 1e-4 without weight decay, iteration-based with a checkpoint every 100 iterations (a run
#   killed mid-epoch resumes mid-epoch); the quantizers initialised on 512 training images before the first step.
qat_qconfig = dict(
    w_bits=4,
    a_bits=4,
    weight=dict(type='LSQQuantizer', granularity='channel', symmetric=True, init='minmax'),
    act=dict(type='LSQQuantizer', granularity='channel', symmetric=True, init='minmax'),
    per_point=dict(softmax=dict(symmetric=False)))
qat_optim_wrapper = dict(_delete_=True, optimizer=dict(type='AdamW', lr=1e-4, weight_decay=0.0))
qat_default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=100, by_epoch=False, max_keep_ckpts=2,
                                         save_best=None))
qat_custom_hooks = [dict(type='QuantizerInitHook', num_images=512), dict(type='RandomStateHook')]
