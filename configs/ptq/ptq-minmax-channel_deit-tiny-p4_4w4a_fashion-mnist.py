# PTQ baseline: as ptq-minmax, with activations quantized per channel (per head at the attention matmuls).
_base_ = ['./ptq-minmax_deit-tiny-p4_4w4a_fashion-mnist.py']
model = dict(backbone=dict(qconfig=dict(act=dict(granularity='channel'))))
