# PTQ baseline: per-channel min-max weights, per-tensor min-max activations, W4A4, calibrated on 512
# training images. Run on the float checkpoint: tools/test.py THIS_CONFIG FLOAT_CHECKPOINT
# (other bits: --cfg-options model.backbone.qconfig.w_bits=8 model.backbone.qconfig.a_bits=8).
_base_ = ['../fp/deit-tiny-p4_fashion-mnist.py']
model = dict(backbone=dict(type='QuantVisionTransformer', qconfig=dict(w_bits=4, a_bits=4)))
test_cfg = dict(type='PTQTestLoop', num_images=512)
