# PTQ baseline for a plain-ViT detector: the Mask R-CNN's windowed ViT backbone quantized (per-channel min-max
# weights, per-tensor min-max activations, W8A8; simple feature pyramid and heads stay float), calibrated on 256
# training scenes.
# tools/test.py THIS_CONFIG FLOAT_CHECKPOINT [--cfg-options model.backbone.qconfig.w_bits=4 ...a_bits=4]
_base_ = ['../fp/mask-rcnn_vit-nano-p8-w8_simple-fpn_fashion-mnist-scenes.py']
model = dict(backbone=dict(type='QuantVisionTransformer', qconfig=dict(w_bits=8, a_bits=8)))
test_cfg = dict(type='PTQTestLoop', num_images=256)
