# Mask R-CNN with a plain ViT, ViTDet style, sized for 128-400 px images on CPU: 8x8 patches (a stride-8 map,
# 16x16 tokens on a 128 px scene), 96 dims, 6 blocks of 3 heads, 8x8 attention windows except in blocks 2 and 5
# (global, as ViTDet-B's every third block), no class token; a simple feature pyramid (64 channels; strides 4, 8,
# 16 from the one map, 32 and 64 by subsampling) instead of FPN. Anchors of 16-256 px (scale 4) fit 10-100 px objects.
_base_ = 'mmdet::_base_/models/mask-rcnn_r50_fpn.py'
embed_dims = 96
fpn_channels = 64
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
        out_channels=fpn_channels,
        scale_factors=(2.0, 1.0, 0.5),
        num_outs=5),
    rpn_head=dict(in_channels=fpn_channels, feat_channels=fpn_channels, anchor_generator=dict(scales=[4])),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=fpn_channels),
        bbox_head=dict(in_channels=fpn_channels, fc_out_channels=128),
        mask_roi_extractor=dict(out_channels=fpn_channels),
        mask_head=dict(in_channels=fpn_channels, conv_out_channels=fpn_channels)),
    # Fewer proposals and RoI samples than COCO's: small images with at most a few dozen objects.
    train_cfg=dict(rpn_proposal=dict(nms_pre=1000, max_per_img=500), rcnn=dict(sampler=dict(num=128))),
    test_cfg=dict(rpn=dict(nms_pre=500, max_per_img=300)))
