# PTQ baseline for tree crowns: the detector's Swin backbone quantized (per-channel min-max weights, per-tensor
# min-max activations, W8A8; FPN and heads stay float), calibrated on the 42 training tiles that hold crowns.
# tools/test.py THIS_CONFIG FLOAT_CHECKPOINT [--cfg-options model.backbone.qconfig.w_bits=4 ...a_bits=4]
_base_ = ['../fp/faster-rcnn_swin-nano-p4-w4_fpn_tree-crowns.py']
model = dict(backbone=dict(type='QuantSwinTransformer', qconfig=dict(w_bits=8, a_bits=8)))
test_cfg = dict(type='PTQTestLoop', num_images=42)
