# ViTDet-B's Mask R-CNN (Li et al., 2022): ViT-B/16 at 1024x1024 with 14x14 attention windows except in blocks 2, 5,
# 8 and 11 (global), no class token, initialised from mmpretrain's MAE ViT-B (its class-token position is dropped
# on loading); a 256-channel simple feature pyramid (strides 4-32 from the stride-16 map, 64 by subsampling) with
# LayerNorms; a 2-conv RPN head and LayerNorm'd 4-conv box and mask heads. Not built here: ViTDet's decomposed
# relative positions in attention (mmpretrain's ViT attention has none; absolute positions are interpolated).
_base_ = 'mmdet::_base_/models/mask-rcnn_r50_fpn.py'
vitdet_image_size = (1024, 1024)
vitdet_norm_cfg = dict(type='mmvitq.LN2d')
mae_vit_b = ('https://download.openmmlab.com/mmselfsup/1.x/mae/mae_vit-base-p16_8xb512-fp16-coslr-1600e_in1k/'
             'mae_vit-base-p16_8xb512-fp16-coslr-1600e_in1k_20220825-f7569ca2.pth')
model = dict(
    data_preprocessor=dict(pad_size_divisor=32, batch_augments=[
        dict(type='BatchFixedSizePad', size=vitdet_image_size, pad_mask=True)]),
    backbone=dict(
        _delete_=True,
        type='mmvitq.WindowedVisionTransformer',
        arch='base',
        img_size=vitdet_image_size[0],
        patch_size=16,
        window_size=14,
        global_attn_indexes=(2, 5, 8, 11),
        drop_path_rate=0.1,
        with_cls_token=False,
        out_type='featmap',
        final_norm=False,
        init_cfg=dict(type='Pretrained', checkpoint=mae_vit_b, prefix='backbone.')),
    neck=dict(
        _delete_=True,
        type='mmvitq.SimpleFeaturePyramid',
        in_channels=768,
        out_channels=256,
        scale_factors=(4.0, 2.0, 1.0, 0.5),
        num_outs=5,
        norm_cfg=vitdet_norm_cfg),
    rpn_head=dict(num_convs=2),
    roi_head=dict(
        bbox_head=dict(type='Shared4Conv1FCBBoxHead', conv_out_channels=256, norm_cfg=vitdet_norm_cfg),
        mask_head=dict(norm_cfg=vitdet_norm_cfg)))
