# Mask R-CNN with a small Swin (32 dims, 3 stages of 2 blocks, 4x4 windows; strides 4, 8, 16) and a 64-channel
# FPN (5 levels, the top two by max pooling), sized for 128-400 px images on CPU (1.3 M parameters).
# Anchors of 16-256 px (scale 4) fit objects of 10-100 px.
_base_ = 'mmdet::_base_/models/mask-rcnn_r50_fpn.py'
embed_dims = 32
fpn_channels = 64
model = dict(
    backbone=dict(
        _delete_=True,
        type='SwinTransformer',
        embed_dims=embed_dims,
        depths=[2, 2, 2],
        num_heads=[2, 4, 8],
        strides=(4, 2, 2),
        window_size=4,
        mlp_ratio=4,
        qkv_bias=True,
        drop_path_rate=0.1,
        patch_norm=True,
        out_indices=(0, 1, 2),
        convert_weights=False),
    neck=dict(in_channels=[embed_dims, 2 * embed_dims, 4 * embed_dims], out_channels=fpn_channels),
    rpn_head=dict(in_channels=fpn_channels, feat_channels=fpn_channels, anchor_generator=dict(scales=[4])),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=fpn_channels),
        bbox_head=dict(in_channels=fpn_channels, fc_out_channels=128),
        mask_roi_extractor=dict(out_channels=fpn_channels),
        mask_head=dict(in_channels=fpn_channels, conv_out_channels=fpn_channels)),
    # Fewer proposals and RoI samples than COCO's: small images with at most a few dozen objects.
    train_cfg=dict(rpn_proposal=dict(nms_pre=1000, max_per_img=500), rcnn=dict(sampler=dict(num=128))),
    test_cfg=dict(rpn=dict(nms_pre=500, max_per_img=300)))
