_base_ = [
    '../_base_/models/retinanet_timm_fpn.py', '../_base_/datasets/coco_detection.py',
    '../_base_/runtimes/det.py', '../_base_/schedules/schedule_1x.py'
]
model = dict(
    backbone=dict(model_name='vig_h_tiny', drop_path_rate=0.2),
    neck=dict(in_channels=[96, 192, 384, 768]),
)
