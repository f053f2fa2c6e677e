# LampQ at an average of 4 bits on DeiT-S, ImageNet-1k (GPU users; data under data/imagenet as mmpretrain
# expects), from the official mmpretrain float weights, searched on 1,024 and calibrated on 1,024 training images:
#   python tools/test.py THIS_CONFIG https://download.openmmlab.com/mmclassification/v0/deit/deit-small_pt-4xb256_in1k_20220218-9425b9bb.pth
# The allocation (work dir, lampq_w4a4_allocation.json: `allocation`) is a qconfig `overrides` dict for GPLQ or QAT.
_base_ = ['mmpretrain::deit/deit-small_4xb256_in1k.py']
custom_imports = dict(imports=['mmvitq'], allow_failed_imports=False)
model = dict(backbone=dict(type='QuantVisionTransformer',
                           qconfig=dict(w_bits=4, a_bits=4, weight=dict(observer='percentile'),
                                        act=dict(observer='percentile', granularity='channel'))))
test_cfg = dict(type='LampQTestLoop', weight_bits=4.0, bits=(2, 3, 4, 5, 6, 8), rounds=3, search_images=1024,
                num_images=1024)
randomness = dict(seed=0)
