# The leaderboard's shared toy denoising recipe (tools/compare.py): the toy sigma-25 denoiser for 80
# iterations instead of 300 (there the backbone starts from the row's toy-segmentation training),
# so that seven ~25 M backbones fit the toy table's hour on 2 CPU cores (docs/configs.md: why).
_base_ = [
    '../_base_/models/restorer_timm.py', '../_base_/datasets/toyrestore.py',
    '../_base_/runtimes/restore.py', '../_base_/schedules/restore_300k.py'
]
model = dict(backbone=dict(pretrained=False))  # no downloads
optim_wrapper = dict(optimizer=dict(lr=2e-3))
param_scheduler = [dict(type='CosineAnnealingLR', eta_min=1e-5, by_epoch=False, begin=0, end=80)]
train_cfg = dict(max_iters=80, val_interval=80)
default_hooks = dict(logger=dict(interval=20), checkpoint=dict(interval=40))
randomness = dict(seed=0)
