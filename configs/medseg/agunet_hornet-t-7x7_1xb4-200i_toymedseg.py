# The leaderboard's shared toy medical segmentation recipe (tools/compare.py): AGUNet with the demo's
# slim head on the full HorNet-T 7x7 (the demo slims the backbone too), on the toy lesion volumes
# for 200 iterations at batch 4 (there the backbone starts from the row's toy-segmentation
# training), so that seven ~25 M backbones fit the toy table's hour on 2 CPU cores
# (docs/configs.md: why).
_base_ = [
    '../_base_/models/agunet_timm.py', '../_base_/datasets/toymedseg.py',
    '../_base_/runtimes/medseg.py', '../_base_/schedules/medseg_20k.py'
]
model = dict(
    backbone=dict(pretrained=False, drop_path_rate=0.0),
    head=dict(channels=(128, 64, 32, 16, 16)),
    num_classes=3)
train_dataloader = dict(batch_size=4)
optim_wrapper = dict(optimizer=dict(lr=2e-3))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=20),
    dict(type='PolyLR', eta_min=0.0, power=0.9, begin=20, end=200, by_epoch=False)
]
train_cfg = dict(max_iters=200, val_interval=200)
default_hooks = dict(logger=dict(interval=10), checkpoint=dict(interval=100))
randomness = dict(seed=0)
