# RepQ-ViT-style PTQ: post-LayerNorm inputs (qkv, fc1) calibrated per channel and folded into the
# LayerNorm and the linear, so they run per tensor; log-sqrt2 quantizer after the softmax.
_base_ = ['./ptq-minmax_deit-tiny-p4_4w4a_fashion-mnist.py']
model = dict(backbone=dict(qconfig=dict(per_point=dict(softmax=dict(type='Log2Quantizer', base='sqrt2')))))
test_cfg = dict(type='RepQViTTestLoop')
