# GPLQ W4A4 of the Swin-T backbone of mmdet's Mask R-CNN on COCO (GPU users; data under data/coco), from the
# official mmdet float weights (downloaded when training starts); one epoch on the detection losses only.
_base_ = ['mmdet::swin/mask-rcnn_swin-t-p4-w7_fpn_1x_coco.py', '../_base_/gplq.py']
custom_imports = dict(imports=['mmvitq'], allow_failed_imports=False)
model = dict(
    _delete_=True,
    type='GPLQ',
    architecture=_base_.model,
    teacher_checkpoint='https://download.openmmlab.com/mmdetection/v2.0/swin/mask_rcnn_swin-t-p4-w7_fpn_1x_coco/'
    'mask_rcnn_swin-t-p4-w7_fpn_1x_coco_20210902_120937-9d6b7cfa.pth',
    qconfig=_base_.gplq_qconfig,
    feature_loss_weight=0.0)
optim_wrapper = _base_.gplq_optim_wrapper
param_scheduler = []
train_cfg = dict(_delete_=True, type='GPLQTrainLoop', stages=('activation', 'weight'), max_epochs=1,
                 calib_images=512)
test_cfg = _base_.gplq_test_cfg
default_hooks = _base_.gplq_default_hooks
log_processor = dict(by_epoch=False)
custom_hooks = [dict(type='RandomStateHook')]
randomness = dict(seed=0)
