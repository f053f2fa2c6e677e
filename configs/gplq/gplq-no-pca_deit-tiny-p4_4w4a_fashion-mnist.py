# GPLQ ablation: stage 1 on the task loss only, without the PCA feature-mimicking term.
_base_ = ['./gplq_deit-tiny-p4_4w4a_fashion-mnist.py']
model = dict(feature_loss_weight=0.0)
