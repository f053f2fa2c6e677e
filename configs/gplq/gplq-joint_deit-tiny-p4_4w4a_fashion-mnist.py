# GPLQ ablation: one epoch of direct W4A4 QAT (LSQ weights, initialised per channel by min-max, trained with the
# activations and the same feature loss) instead of activations first and weight PTQ later.
_base_ = ['./gplq_deit-tiny-p4_4w4a_fashion-mnist.py']
model = dict(qconfig=dict(
    weight=dict(_delete_=True, type='LSQQuantizer', granularity='channel', symmetric=True, init='minmax')))
train_cfg = dict(stages=('joint', ))
