# Restormer's recipe: AdamW lr 3e-4, weight decay 1e-4, cosine to 1e-6 over 300k iterations.
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=3e-4, betas=(0.9, 0.999), weight_decay=1e-4))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=1000),
    dict(type='CosineAnnealingLR', eta_min=1e-6, by_epoch=False, begin=1000, end=300000)
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=300000, val_interval=20000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
