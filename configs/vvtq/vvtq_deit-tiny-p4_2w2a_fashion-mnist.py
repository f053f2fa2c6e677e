# Variation-aware QAT, W2A2, of the float DeiT-tiny of Fashion-MNIST: the W4A4 config at 2 bits (patch
# embedding and head stay at 8), trained 8 epochs (3752 iterations of batch 128) instead of 4.
_base_ = ['./vvtq_deit-tiny-p4_4w4a_fashion-mnist.py']
model = dict(qconfig=dict(w_bits=2, a_bits=2))
param_scheduler = [dict(type='CosineAnnealingLR', by_epoch=False, begin=0, end=3752, eta_min=0.0)]
train_cfg = dict(max_iters=3752)
