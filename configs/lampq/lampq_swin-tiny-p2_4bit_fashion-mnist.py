# LampQ at an average of 4 bits on the float Swin of Fashion-MNIST, with the same PTQ calibration as the ViT
# configs (percentile ranges, per-channel activations, per-channel weights):
#   python tools/test.py THIS_CONFIG checkpoints/swin-tiny-p2_fashion-mnist-b4eed4fa.pth
# Uniform W4A4 with the same calibration: add `--cfg-options "test_cfg.bits=[4]"` (one candidate width).
_base_ = ['../fp/swin-tiny-p2_fashion-mnist.py']
model = dict(backbone=dict(type='QuantSwinTransformer',
                           qconfig=dict(w_bits=4, a_bits=4, weight=dict(observer='percentile'),
                                        act=dict(observer='percentile', granularity='channel'))))
test_cfg = dict(type='LampQTestLoop', weight_bits=4.0, bits=(2, 3, 4, 5, 6, 8), rounds=3, search_images=256,
                num_images=512)
