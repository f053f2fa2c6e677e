# Mask R-CNN with a plain ViT, ViTDet style, sized for 128-400 px images on CPU: 8x8 patches (a stride-8 map,
# 16x16 tokens on a 128 px scene), 96 dims, 6 blocks of 3 heads, 8x8 attention windows except in blocks 2 and 5
# (global, as ViTDet-B's every third block), no class token; a simple feature pyramid (64 channels; strides 4, 8,
# 16 from the one map, 32 and 64 by subsampling) instead of FPN. The heads, anchors and proposal settings are the
# Swin detector's.
_base_ = './mask-rcnn_swin-nano-p4-w4_fpn.py'
embed_dims = 96
model = dict(
    backbone=dict(
        _delete_=True,
        type='mmvitq.WindowedVisionTransformer',
        arch=dict(embed_dims=embed_dims, num_layers=6, num_heads=3, feedforward_channels=4 * embed_dims),
        img_size=128,
        patch_size=8,
        window_size=8,
        global_attn_indexes=(2, 5),
        drop_path_rate=0.1,
        with_cls_token=False,
        out_type='featmap',
        final_norm=False),
    neck=dict(
        _delete_=True,
        type='mmvitq.SimpleFeaturePyramid',
        in_channels=embed_dims,
        out_channels=_base_.fpn_channels,
        scale_factors=(2.0, 1.0, 0.5),
        num_outs=5))
