# halonet26t needs H and W divisible by 256: the bridge pads (size_divisor='auto') and crops back.
_base_ = [
    '../_base_/models/upernet_timm.py', '../_base_/datasets/ade20k.py',
    '../_base_/runtimes/seg.py', '../_base_/schedules/schedule_160k.py'
]
model = dict(data_preprocessor=dict(size=_base_.crop_size))
