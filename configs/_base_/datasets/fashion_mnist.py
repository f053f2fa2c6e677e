# Fashion-MNIST (70k real 28x28 garment photos, MIT licence), from Debian's dataset-fashion-mnist package,
# unpacked by `make data` and read by mmpretrain's own FashionMNIST dataset (never downloaded).
dataset_type = 'FashionMNIST'
data_root = 'data/fashion_mnist'
# Pixel statistics of the training split (mean 0.2860, std 0.3530 on a 0..1 scale).
data_preprocessor = dict(num_classes=10, mean=[72.94], std=[90.02])

train_pipeline = [dict(type='RandomFlip', prob=0.5, direction='horizontal'), dict(type='PackInputs')]
test_pipeline = [dict(type='PackInputs')]

train_dataloader = dict(
    batch_size=128,
    num_workers=1,
    dataset=dict(type=dataset_type, data_root=data_root, split='train', download=False, pipeline=train_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=True))
# mmpretrain 1.2.0 picks the files by test_mode, not by split: set both.
val_dataloader = dict(
    batch_size=256,
    num_workers=1,
    dataset=dict(type=dataset_type, data_root=data_root, split='test', test_mode=True, download=False,
                 pipeline=test_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=False))
val_evaluator = dict(type='Accuracy', topk=(1, ))
test_dataloader = val_dataloader
test_evaluator = val_evaluator
