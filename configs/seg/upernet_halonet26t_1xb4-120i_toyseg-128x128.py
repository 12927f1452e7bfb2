# The leaderboard's shared toy segmentation recipe (tools/compare.py): UPerNet trained from scratch
# on the toy shapes at 128x128 for 120 iterations at twice the demo's learning rate: a quarter of
# the 256 px demo's pixels, so that seven ~25 M backbones fit the toy table's hour on 2 CPU cores
# (docs/configs.md: why).
_base_ = ['./upernet_halonet26t_1xb4-200i_toyseg-256x256.py']
crop_size = (128, 128)
_toy = dict(image_size=128)
train_pipeline = [
    dict(type='gatedvision.LoadImageFromFile'),
    dict(type='LoadAnnotations'),  # reduce_zero_label: the dataset's (ADE20K's: True)
    dict(type='RandomResize', scale=(128, 128), ratio_range=(0.75, 1.5), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='gatedvision.Albu', transforms=[
        dict(type='ColorJitter', brightness=0.2, contrast=0.2, saturation=0.2, hue=0.02, p=0.8),
        dict(type='GaussNoise', std_range=(0.01, 0.04), p=0.3)]),
    dict(type='PackSegInputs')
]
model = dict(data_preprocessor=dict(size=crop_size))
train_dataloader = dict(dataset=dict(pipeline=train_pipeline, **_toy))
val_dataloader = dict(dataset=_toy)
test_dataloader = val_dataloader
optim_wrapper = dict(optimizer=dict(lr=2e-3))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=15),
    dict(type='PolyLR', eta_min=0.0, power=1.0, begin=15, end=120, by_epoch=False)
]
train_cfg = dict(max_iters=120, val_interval=120)
default_hooks = dict(logger=dict(interval=10), checkpoint=dict(interval=60, max_keep_ckpts=2))
