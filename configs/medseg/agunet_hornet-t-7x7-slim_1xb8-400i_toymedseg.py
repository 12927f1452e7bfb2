# The demo: AGUNet on a slim HorNet-T 7x7 (depths 1-1-2-1, width 32: ~5x faster on a CPU), trained
# from scratch on the toy lesion volumes (3 mm, 64x64 axial crops). See docs/medseg.md.
_base_ = [
    '../_base_/models/agunet_timm.py', '../_base_/datasets/toymedseg.py',
    '../_base_/runtimes/medseg.py', '../_base_/schedules/medseg_20k.py'
]
model = dict(
    backbone=dict(pretrained=False, depths=(1, 1, 2, 1), base_dim=32, drop_path_rate=0.0),
    head=dict(channels=(128, 64, 32, 16, 16)),
    num_classes=3)
optim_wrapper = dict(optimizer=dict(lr=2e-3))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=20),
    dict(type='PolyLR', eta_min=0.0, power=0.9, begin=20, end=400, by_epoch=False)
]
train_cfg = dict(max_iters=400, val_interval=400)
default_hooks = dict(logger=dict(interval=10), checkpoint=dict(interval=200))
randomness = dict(seed=0)
