# LampQ at an average of 4 bits on the Swin-T backbone of mmdet's Mask R-CNN on COCO (GPU users; data under
# data/coco), from the official mmdet float weights; FPN and heads stay float:
#   python tools/test.py THIS_CONFIG https://download.openmmlab.com/mmdetection/v2.0/swin/mask_rcnn_swin-t-p4-w7_fpn_1x_coco/mask_rcnn_swin-t-p4-w7_fpn_1x_coco_20210902_120937-9d6b7cfa.pth
_base_ = ['mmdet::swin/mask-rcnn_swin-t-p4-w7_fpn_1x_coco.py']
custom_imports = dict(imports=['mmvitq'], allow_failed_imports=False)
model = dict(backbone=dict(type='QuantSwinTransformer', init_cfg=None,
                           qconfig=dict(w_bits=4, a_bits=4, act=dict(observer='percentile', granularity='channel'))))
test_cfg = dict(type='LampQTestLoop', weight_bits=4.0, bits=(2, 3, 4, 5, 6, 8), rounds=3, search_images=256,
                num_images=512)
randomness = dict(seed=0)
