_base_ = [
    '../_base_/models/restorer_timm.py', '../_base_/datasets/denoise_sigma25.py',
    '../_base_/runtimes/restore.py', '../_base_/schedules/restore_300k.py'
]
model = dict(backbone=dict(model_name='vig_h_tiny'))
