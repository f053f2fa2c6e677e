# mmdet's runtime plus mmvitq's registrations and a fixed seed (the same batches and PTQ calibration images).
_base_ = 'mmdet::_base_/default_runtime.py'
custom_imports = dict(imports=['mmvitq'], allow_failed_imports=False)
# mmvitq's Runner (tools/train.py and tools/test.py use it anyway): weights-only checkpoint loading, atomic saves.
runner_type = 'mmvitq.Runner'
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=2),
                     logger=dict(type='LoggerHook', interval=50))
randomness = dict(seed=0)
# Checkpoints carry the RNG states, so a resumed run draws the same dropout / drop-path masks.
custom_hooks = [dict(type='RandomStateHook')]
