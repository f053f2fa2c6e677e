# GPLQ's quantization: 4-bit activations with per-channel symmetric LSQ scales (min-max init; the attention
# probabilities on an unsigned grid), 4-bit per-channel symmetric weights set by percentile in stage 2;
# patch embedding and head at 8 bits. Used as `qconfig=_base_.gplq_qconfig`.
gplq_qconfig = dict(
    w_bits=4,
    a_bits=4,
    weight=dict(type='UniformQuantizer', granularity='channel', symmetric=True, observer='percentile'),
    act=dict(type='LSQQuantizer', granularity='channel', symmetric=True, init='minmax'),
    per_point=dict(softmax=dict(symmetric=False)))
