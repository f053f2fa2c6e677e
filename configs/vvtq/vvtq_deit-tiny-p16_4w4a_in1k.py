# Variation-aware QAT, W4A4, of DeiT-T on ImageNet-1k, the published recipe (GPU users; data under data/imagenet
# as mmpretrain expects), from the official mmpretrain float weights (downloaded when training starts):
# configs/_base_/vvtq.py and configs/_base_/vvtq_in1k.py (150 epochs, AdamW lr 5e-4, batch 512 over 4 GPUs,
# 4 crops per image in the label bank).
#   torchrun --nproc_per_node=4 tools/train.py THIS_CONFIG --launcher pytorch
# W3A3 / W2A2: --cfg-options model.qconfig.w_bits=2 model.qconfig.a_bits=2
_base_ = ['mmpretrain::deit/deit-tiny_4xb256_in1k.py', '../_base_/vvtq.py', '../_base_/vvtq_in1k.py']
custom_imports = dict(imports=['mmvitq'], allow_failed_imports=False)
float_checkpoint = ('https://download.openmmlab.com/mmclassification/v0/deit/'
                    'deit-tiny_pt-4xb256_in1k_20220218-13b382a0.pth')
# The crops carry soft labels: no Mixup/CutMix batch augments, which would overwrite them.
architecture = dict(_base_.model, train_cfg=None)
model = dict(_delete_=True, type='VVTQ', architecture=architecture, checkpoint=float_checkpoint,
             qconfig=_base_.vvtq_qconfig, regularizer=_base_.vvtq_regularizer)
train_dataloader = dict(batch_size=_base_.vvtq_in1k_batch_size,
                        dataset=dict(_base_.vvtq_in1k_bank, _delete_=True, teacher=architecture,
                                     teacher_checkpoint=float_checkpoint, data_preprocessor=_base_.data_preprocessor))
optim_wrapper = _base_.vvtq_optim_wrapper
param_scheduler = _base_.vvtq_in1k_param_scheduler
train_cfg = _base_.vvtq_in1k_train_cfg
default_hooks = _base_.vvtq_in1k_default_hooks
custom_hooks = _base_.vvtq_custom_hooks
auto_scale_lr = dict(base_batch_size=512)
randomness = dict(seed=0)
