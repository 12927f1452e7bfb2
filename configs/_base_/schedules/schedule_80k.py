# Semantic FPN 80k: AdamW lr 2e-4, weight decay 1e-4, linear warm-up (1000 iterations from 0.1) then
# cosine decay: the PVT / UniFormer recipe that BiFormer's Semantic FPN results used (8 GPUs x 2).
_base_ = ['./schedule_160k.py']
optim_wrapper = dict(
    optimizer=dict(lr=2e-4, weight_decay=1e-4), paramwise_cfg=dict(_delete_=True))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=1000),
    dict(type='CosineAnnealingLR', eta_min=2e-12, begin=1000, end=80000, by_epoch=False)
]
train_cfg = dict(max_iters=80000, val_interval=8000)
