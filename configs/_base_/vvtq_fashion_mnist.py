# VVTQ's Fashion-MNIST settings, shared by the ViT and Swin configs under configs/vvtq/ as `_base_.vvtq_fmnist_*`:
# - the multi-crop label bank over the training split: 4 views per image, top-5 soft labels, built on first use
#   into work_dirs/label_banks and shared by every config with the same teacher and views (configs add the
#   teacher). The bank's views follow the float model's own training augmentation, as the published recipe's
#   RandomResizedCrop follows DeiT's on ImageNet: the Fashion-MNIST float models trained on whole images with
#   horizontal flips (configs/_base_/datasets/fashion_mnist.py), so the bank holds whole images, flipped at
#   random (scale and ratio 1);
# - 4 epochs of 469 iterations (batch 128), iteration-based so a killed run resumes mid-epoch, validated and
#   checkpointed every epoch.
vvtq_fmnist_bank = dict(
    type='LabelBankDataset',
    dataset=dict(type='FashionMNIST', data_root='data/fashion_mnist', split='train', download=False, pipeline=[]),
    pipeline=[dict(type='BankedResizedCrop', size=28, scale=(1.0, 1.0), ratio=(1.0, 1.0)), dict(type='PackInputs')],
    num_crops=4,
    topk=5)
vvtq_fmnist_param_scheduler = [dict(type='CosineAnnealingLR', by_epoch=False, begin=0, end=1876, eta_min=0.0)]
vvtq_fmnist_train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=1876, val_interval=469)
vvtq_fmnist_default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=469, by_epoch=False,
                                                 max_keep_ckpts=2, save_best=None))
