# A small Swin for 28x28 single-channel images: 2x2 patches (14x14 tokens, 7x7 windows), two stages.
model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='SwinTransformer',
        arch=dict(embed_dims=48, depths=[2, 4], num_heads=[3, 6]),
        img_size=28,
        patch_size=2,
        in_channels=1,
        window_size=7,
        drop_path_rate=0.1,
        out_indices=(1, )),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(type='LinearClsHead', num_classes=10, in_channels=96,
              loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='original')))
