# Colour denoising at sigma 15 on CBSD432 / CBSD68 (python tools/download.py --dataset cbsd): the
# sigma-25 recipe (nafdec_hornet-t-7x7_1xb8-20k_cbsd432-sigma25.py) with sigma-15 noise, the
# three levels DnCNN and FFDNet report. Not trained here (no GPU): docs/your-data.md.
_base_ = [
    '../_base_/models/restorer_timm.py', '../_base_/datasets/denoise_sigma25.py',
    '../_base_/runtimes/restore.py', '../_base_/schedules/restore_300k.py'
]
sigma = 15
degrade = dict(type='Degrade', transforms=[dict(type='GaussNoise', std_range=(sigma / 255, sigma / 255), p=1.0)])
train_pipeline = [
    dict(type='LoadImagePair'),
    dict(type='PairedAlbu', transforms=[
        dict(type='RandomCrop', height=256, width=256, pad_if_needed=True),
        dict(type='HorizontalFlip'), dict(type='RandomRotate90')]),
    degrade,
    dict(type='PackRestorationInputs')
]
test_pipeline = [dict(type='LoadImagePair'), dict(degrade, seed=0), dict(type='PackRestorationInputs')]
model = dict(backbone=dict(model_name='hornet_tiny_7x7'))
train_dataloader = dict(dataset=dict(data_root='data/denoise/CBSD432', pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(data_root='data/denoise/CBSD68', pipeline=test_pipeline))
test_dataloader = val_dataloader
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=500),
    dict(type='CosineAnnealingLR', eta_min=1e-6, by_epoch=False, begin=500, end=20000)
]
train_cfg = dict(max_iters=20000, val_interval=2000)
default_hooks = dict(checkpoint=dict(interval=2000))
