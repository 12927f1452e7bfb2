_base_ = [
    '../_base_/models/retinanet_timm_fpn.py', '../_base_/datasets/coco_detection.py',
    '../_base_/runtimes/det.py', '../_base_/schedules/schedule_1x.py'
]
model = dict(backbone=dict(model_name='hornet_tiny_7x7', drop_path_rate=0.2))
