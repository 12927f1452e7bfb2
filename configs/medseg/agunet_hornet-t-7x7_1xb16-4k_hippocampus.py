# MSD Task04 Hippocampus (python tools/download.py --dataset hippocampus): 260 labelled MRI volumes
# of about 35x50x35 voxels (1 mm), anterior and posterior hippocampus; fold 0 of nnU-Net's 5-fold
# split trains on 208 and validates on 52. HorNet-T from its ImageNet weights (the RGB stem summed
# to one channel, as timm adapts it), 2-D axial slices padded to 64x64. Not trained here (no GPU):
# docs/your-data.md says what is measured.
_base_ = [
    '../_base_/models/agunet_timm.py', '../_base_/datasets/nnunet.py',
    '../_base_/runtimes/medseg.py', '../_base_/schedules/medseg_20k.py'
]
data_root = 'data/Task04_Hippocampus'
model = dict(backbone=dict(model_name='hornet_tiny_7x7', in_channels=1), num_classes=3)
train_pipeline = [
    dict(type='gatedvision.SampleSlice', fg_prob=0.33),
    dict(type='gatedvision.RandomCropSlice', patch_size=(64, 64)),
    dict(type='gatedvision.RandomFlipSlice', prob=0.5),
    dict(type='gatedvision.RandomIntensity', scale=0.1, shift=0.1),
    dict(type='gatedvision.PackMedSegSlice'),
]
train_dataloader = dict(batch_size=16, dataset=dict(data_root=data_root, cache='memory', pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=200),
    dict(type='PolyLR', eta_min=0.0, power=0.9, begin=200, end=4000, by_epoch=False)
]
train_cfg = dict(max_iters=4000, val_interval=1000)
default_hooks = dict(checkpoint=dict(interval=1000))
