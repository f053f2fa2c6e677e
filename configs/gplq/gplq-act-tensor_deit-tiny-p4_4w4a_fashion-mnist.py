# GPLQ ablation: per-tensor instead of per-channel activation scales (everything else as the main recipe).
_base_ = ['./gplq_deit-tiny-p4_4w4a_fashion-mnist.py']
model = dict(qconfig=dict(act=dict(granularity='tensor')))
