# A small DeiT-style ViT for 28x28 single-channel images: 4x4 patches (7x7 tokens + cls token).
model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='VisionTransformer',
        arch=dict(embed_dims=96, num_layers=6, num_heads=3, feedforward_channels=384),
        img_size=28,
        patch_size=4,
        in_channels=1,
        drop_rate=0.0,
        drop_path_rate=0.1),
    neck=None,
    head=dict(type='VisionTransformerClsHead', num_classes=10, in_channels=96,
              loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='original')))
