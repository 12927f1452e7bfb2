_base_ = [
    '../_base_/models/upernet_timm.py', '../_base_/datasets/ade20k.py',
    '../_base_/runtimes/seg.py', '../_base_/schedules/schedule_160k.py'
]
model = dict(
    data_preprocessor=dict(size=_base_.crop_size),
    backbone=dict(model_name='vig_tiny', drop_path_rate=0.1),
    neck=dict(type='gatedvision.SimplePyramid', in_channels=192, out_channels=None),
    decode_head=dict(in_channels=[48, 96, 192, 192]),
    auxiliary_head=dict(in_channels=192),
)
