# Toy sigma-25 denoising from scratch on scikit-image's pictures; CPU-friendly (a few minutes).
_base_ = [
    '../_base_/models/restorer_timm.py', '../_base_/datasets/toyrestore.py',
    '../_base_/runtimes/restore.py', '../_base_/schedules/restore_300k.py'
]
model = dict(backbone=dict(pretrained=False))  # no downloads
optim_wrapper = dict(optimizer=dict(lr=2e-3))
param_scheduler = [dict(type='CosineAnnealingLR', eta_min=1e-5, by_epoch=False, begin=0, end=300)]
train_cfg = dict(max_iters=300, val_interval=300)
default_hooks = dict(logger=dict(interval=20), checkpoint=dict(interval=300))
randomness = dict(seed=0)
