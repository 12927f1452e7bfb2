# The demo: UPerNet on halonet26t trained from scratch on the toy shapes, CPU-friendly.
_base_ = [
    '../_base_/models/upernet_timm.py', '../_base_/datasets/toyseg.py',
    '../_base_/runtimes/seg.py', '../_base_/schedules/schedule_160k.py'
]
norm_cfg = dict(type='BN', requires_grad=True)  # SyncBN needs a process group and a GPU
model = dict(
    data_preprocessor=dict(size=_base_.crop_size),
    backbone=dict(pretrained=False),  # no downloads: trained from scratch
    decode_head=dict(channels=128, num_classes=5, norm_cfg=norm_cfg),
    auxiliary_head=dict(channels=64, num_classes=5, norm_cfg=norm_cfg))
optim_wrapper = dict(optimizer=dict(lr=1e-3, weight_decay=0.05))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=30),
    dict(type='PolyLR', eta_min=0.0, power=1.0, begin=30, end=200, by_epoch=False)
]
train_cfg = dict(max_iters=200, val_interval=200)
default_hooks = dict(
    logger=dict(interval=10), checkpoint=dict(interval=100, max_keep_ckpts=2))
randomness = dict(seed=0)
