# Tree crowns: aerial RGB photos with human-drawn crown boxes from the deepforest wheel (MIT licence), cut by
# `make data` into tiles of up to 400x400 px; one class, boxes only, COCO format for mmdet's CocoDataset.
_base_ = 'mmdet::_base_/datasets/coco_detection.py'
data_root = 'data/tree_crowns/'
metainfo = dict(classes=('Tree', ))
# Pixel statistics of the tiles (RGB).
data_preprocessor = dict(type='DetDataPreprocessor', mean=[132.38, 146.09, 122.35], std=[59.30, 54.67, 39.76],
                         bgr_to_rgb=True, pad_size_divisor=32)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(400, 400), keep_ratio=True),
    # Seen from above, a scene flipped either way is still a plausible scene.
    dict(type='RandomFlip', prob=[0.5, 0.5], direction=['horizontal', 'vertical']),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(400, 400), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor'))
]
train_dataloader = dict(
    batch_size=2,
    num_workers=1,
    batch_sampler=None,
    dataset=dict(data_root=data_root, metainfo=metainfo, ann_file='annotations/train.json', data_prefix=dict(img=''),
                 filter_cfg=dict(filter_empty_gt=True, min_size=4), pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=2,
    num_workers=1,
    dataset=dict(data_root=data_root, metainfo=metainfo, ann_file='annotations/val.json', data_prefix=dict(img=''),
                 pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/val.json', metric='bbox')
test_evaluator = val_evaluator
