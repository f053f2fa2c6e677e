# PTQ baseline: as ptq-percentile, with activations quantized per channel (per head at the attention matmuls).
_base_ = ['./ptq-percentile_deit-tiny-p4_4w4a_fashion-mnist.py']
model = dict(backbone=dict(qconfig=dict(act=dict(granularity='channel'))))
