# PTQ baseline: as ptq-minmax, with percentile ranges for weights and activations.
_base_ = ['./ptq-minmax_deit-tiny-p4_4w4a_fashion-mnist.py']
model = dict(backbone=dict(qconfig=dict(weight=dict(observer='percentile'), act=dict(observer='percentile'))))
