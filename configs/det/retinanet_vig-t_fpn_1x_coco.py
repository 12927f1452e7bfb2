_base_ = [
    '../_base_/models/retinanet_timm_fpn.py', '../_base_/datasets/coco_detection.py',
    '../_base_/runtimes/det.py', '../_base_/schedules/schedule_1x.py'
]
model = dict(
    backbone=dict(model_name='vig_tiny', drop_path_rate=0.1),
    neck=[dict(type='gatedvision.SimplePyramid', in_channels=192, out_channels=None),
          dict(type='FPN', in_channels=[48, 96, 192, 192], out_channels=256, num_outs=5, start_level=1, add_extra_convs='on_input')],
)
