# Variation-aware QAT, W4A4, of Swin-T on ImageNet-1k: the DeiT-T recipe (configs/vvtq/vvtq_deit-tiny-p16_4w4a_in1k.py)
# with mmpretrain's Swin-T and its official float weights (downloaded when training starts) as student and teacher.
#   torchrun --nproc_per_node=4 tools/train.py THIS_CONFIG --launcher pytorch
_base_ = ['./vvtq_deit-tiny-p16_4w4a_in1k.py']
float_checkpoint = ('https://download.openmmlab.com/mmclassification/v0/swin-transformer/'
                    'swin_tiny_224_b16x64_300e_imagenet_20210616_090925-66df6be6.pth')
architecture = dict(
    _delete_=True,
    type='ImageClassifier',
    backbone=dict(type='SwinTransformer', arch='tiny', img_size=224, drop_path_rate=0.2),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(type='LinearClsHead', num_classes=1000, in_channels=768,
              loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='original'), cal_acc=False))
model = dict(architecture=architecture, checkpoint=float_checkpoint)
train_dataloader = dict(dataset=dict(teacher=architecture, teacher_checkpoint=float_checkpoint))
