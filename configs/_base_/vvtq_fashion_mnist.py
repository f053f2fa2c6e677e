# VVTQ's Fashion-MNIST settings, shared by the ViT and Swin configs under configs/vvtq/ as `_base_.vvtq_fmnist_*`:
# - the multi-crop label bank over the training split: 4 crops per image, top-5 soft labels, built on first use
#   into work_dirs/label_banks and shared by every config with the same teacher and crops (configs add the
#   teacher). Crops cover 35-100% of the 28x28 image: at 4x4-pixel patches a smaller crop would be upscaled from
#   about 2x2 tokens;
# - 4 epochs of 469 iterations (batch 128), iteration-based so a killed run resumes mid-epoch, validated and
#   checkpointed every epoch.
vvtq_fmnist_bank = dict(
    type='LabelBankDataset',
    dataset=dict(type='FashionMNIST', data_root='data/fashion_mnist', split='train', download=False, pipeline=[]),
    pipeline=[dict(type='BankedResizedCrop', size=28, scale=(0.35, 1.0)), dict(type='PackInputs')],
    num_crops=4,
    topk=5)
vvtq_fmnist_param_scheduler = [dict(type='CosineAnnealingLR', by_epoch=False, begin=0, end=1876, eta_min=0.0)]
vvtq_fmnist_train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=1876, val_interval=469)
vvtq_fmnist_default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=469, by_epoch=False,
                                                 max_keep_ckpts=2, save_best=None))
