# Colour denoising at sigma 25 on the standard small sets (python tools/download.py --dataset cbsd):
# trained on CBSD432 (432 BSD photographs, random 256 crops), tested on CBSD68 with the fixed noise
# seed, as DnCNN / FFDNet report. The decoder over HorNet-T from its ImageNet weights, 20k iterations
# of batch 8 on one GPU. Not trained here (no GPU): docs/your-data.md says what is measured.
_base_ = [
    '../_base_/models/restorer_timm.py', '../_base_/datasets/denoise_sigma25.py',
    '../_base_/runtimes/restore.py', '../_base_/schedules/restore_300k.py'
]
model = dict(backbone=dict(model_name='hornet_tiny_7x7'))
train_dataloader = dict(dataset=dict(data_root='data/denoise/CBSD432'))
val_dataloader = dict(dataset=dict(data_root='data/denoise/CBSD68'))
test_dataloader = val_dataloader
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=500),
    dict(type='CosineAnnealingLR', eta_min=1e-6, by_epoch=False, begin=500, end=20000)
]
train_cfg = dict(max_iters=20000, val_interval=2000)
default_hooks = dict(checkpoint=dict(interval=2000))
