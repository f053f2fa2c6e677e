# The variation-aware QAT recipe (Huang et al.), referenced by the configs under configs/vvtq/ as `_base_.vvtq_*`:
# - LSQ everywhere, all scales trained: weights on a symmetric per-tensor grid with MSE-searched initial
#   scales; activations on an asymmetric grid with a learned offset (LSQ+), MSE-initialised;
# - module-dependent scales: a scale per head for the q/k/v projection weights, the input of the attention
#   output projection and both attention matmuls' inputs; patch embedding and head at 8 bits;
# - the oscillation regulariser at weight 0.01 on a cosine ramp from 25% of training;
# - AdamW (lr 5e-4, weight decay 1e-4 off the quantizer scales, norms and biases), cosine decay to 0, no warm-up;
# - quantizers initialised on 512 training images; oscillation tracked every iteration.
vvtq_qconfig = dict(
    w_bits=4,
    a_bits=4,
    weight=dict(type='LSQQuantizer', granularity='tensor', symmetric=True, init='mse'),
    act=dict(type='LSQQuantizer', granularity='tensor', symmetric=False, learnable_offset=True, init='mse'),
    per_type=dict(
        qkv=dict(weight=dict(granularity='head')),
        proj=dict(act=dict(granularity='head')),
        qk=dict(act=dict(granularity='head')),
        av=dict(act=dict(granularity='head'))))
vvtq_regularizer = dict(weight=0.01, start=0.25)
vvtq_optim_wrapper = dict(
    _delete_=True,
    optimizer=dict(type='AdamW', lr=5e-4, weight_decay=1e-4),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0,
                       custom_keys={'.scale': dict(decay_mult=0.0), '.zero_point': dict(decay_mult=0.0)}))
vvtq_custom_hooks = [
    dict(type='QuantizerInitHook', num_images=512),
    dict(type='ProgressHook'),
    dict(type='OscillationTrackerHook', interval=1),
    dict(type='RandomStateHook'),
]
