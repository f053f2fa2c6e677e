# PTQ baseline for detection: the Mask R-CNN's Swin backbone quantized (per-channel min-max weights, per-tensor
# min-max activations, W8A8; FPN and heads stay float), calibrated on 256 training scenes.
# tools/test.py THIS_CONFIG FLOAT_CHECKPOINT [--cfg-options model.backbone.qconfig.w_bits=4 ...a_bits=4]
_base_ = ['../fp/mask-rcnn_swin-nano-p4-w4_fpn_fashion-mnist-scenes.py']
model = dict(backbone=dict(type='QuantSwinTransformer', qconfig=dict(w_bits=8, a_bits=8)))
test_cfg = dict(type='PTQTestLoop', num_images=256)
