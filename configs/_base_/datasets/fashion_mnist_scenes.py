# Fashion-MNIST scenes (made by `make data` from real Fashion-MNIST garments, MIT licence): 128x128 canvases
# with 1-6 items, boxes and instance masks, 10 classes, in COCO format for mmdet's CocoDataset.
_base_ = 'mmdet::_base_/datasets/coco_instance.py'
data_root = 'data/fashion_mnist_scenes/'
metainfo = dict(classes=('T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag',
                         'Ankle boot'))
# Pixel statistics of the training scenes (grey, read as 3 equal channels).
data_preprocessor = dict(type='DetDataPreprocessor', mean=[32.76] * 3, std=[68.56] * 3, bgr_to_rgb=False,
                         pad_mask=True, pad_size_divisor=32)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='Resize', scale=(128, 128), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(128, 128), keep_ratio=True),  # the identity on 128x128 scenes; sets scale_factor
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor'))
]
train_dataloader = dict(
    batch_size=8,
    num_workers=1,
    batch_sampler=None,
    dataset=dict(data_root=data_root, metainfo=metainfo, ann_file='annotations/train.json', data_prefix=dict(img=''),
                 filter_cfg=dict(filter_empty_gt=True, min_size=4), pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=8,
    num_workers=1,
    dataset=dict(data_root=data_root, metainfo=metainfo, ann_file='annotations/val.json', data_prefix=dict(img=''),
                 pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/val.json', metric=['bbox', 'segm'])
test_evaluator = val_evaluator
