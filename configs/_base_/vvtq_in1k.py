# VVTQ's ImageNet-1k settings (the published recipe), shared by the DeiT-T and Swin-T configs under configs/vvtq/
# as `_base_.vvtq_in1k_*`: soft labels of 4 random crops per image (224 px, bicubic, top-5 with marginal
# smoothing) in a label bank built by the float model before the first step (configs add the teacher); batch 512
# over 4 GPUs; 150 epochs, cosine to 0, validation every 5 epochs.
vvtq_in1k_bank = dict(
    type='LabelBankDataset',
    dataset=dict(type='ImageNet', data_root='data/imagenet', split='train', pipeline=[]),
    pipeline=[
        dict(type='LoadImageFromFile'),
        dict(type='BankedResizedCrop', size=224, interpolation='bicubic'),
        dict(type='PackInputs')
    ],
    num_crops=4,
    topk=5,
    batch_images=64)
vvtq_in1k_batch_size = 128  # per GPU
vvtq_in1k_param_scheduler = [dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=150, eta_min=0.0,
                                  convert_to_iter_based=True)]
vvtq_in1k_train_cfg = dict(by_epoch=True, max_epochs=150, val_interval=5)
vvtq_in1k_default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=2, save_best='auto'))
