_base_ = [
    '../_base_/models/mask-rcnn_timm_fpn.py', '../_base_/datasets/coco_instance.py',
    '../_base_/runtimes/det.py', '../_base_/schedules/schedule_1x.py'
]
model = dict(
    # the authors' dense backbone keeps its BatchNorms in eval mode while training (norm_eval=True)
    backbone=dict(model_name='biformer_small', drop_path_rate=0.2, n_win=16, norm_eval=True),
    neck=dict(in_channels=[64, 128, 256, 512]),
)
