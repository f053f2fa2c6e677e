# VVTQ's detection settings on Fashion-MNIST scenes, shared by the Swin and plain-ViT Mask R-CNN configs under
# configs/vvtq/ as `_base_.vvtq_det_*`. The original method has no detection recipe: the detection losses replace
# the distillation (no label bank); AdamW at the detector's fine-tuning rate 1e-4, cosine to 0 over 2 epochs (500
# iterations), validation and a checkpoint every epoch; the quantizers initialised on 64 training scenes.
vvtq_det_optimizer = dict(type='AdamW', lr=1e-4, weight_decay=1e-4)
vvtq_det_param_scheduler = [dict(type='CosineAnnealingLR', by_epoch=False, begin=0, end=500, eta_min=0.0)]
vvtq_det_train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=500, val_interval=250)
vvtq_det_default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=250, by_epoch=False, max_keep_ckpts=2,
                                              save_best=None))
vvtq_det_init_images = 64
