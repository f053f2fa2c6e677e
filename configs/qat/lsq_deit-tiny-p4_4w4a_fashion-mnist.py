# Plain LSQ QAT baseline: W4A4, weights and activations quantized and trained together on the task loss
# (no distillation), from the float ViT; one epoch by default (train_cfg.max_epochs=N for more).
_base_ = ['../gplq/gplq-joint_deit-tiny-p4_4w4a_fashion-mnist.py']
model = dict(feature_loss_weight=0.0)
