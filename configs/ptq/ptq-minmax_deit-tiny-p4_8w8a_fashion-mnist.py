# PTQ baseline at W8A8 (see the W4A4 config).
_base_ = ['./ptq-minmax_deit-tiny-p4_4w4a_fashion-mnist.py']
model = dict(backbone=dict(qconfig=dict(w_bits=8, a_bits=8)))
