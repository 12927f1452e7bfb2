_base_ = [
    '../_base_/models/retinanet_timm_fpn.py', '../_base_/datasets/coco_instance.py',
    '../_base_/runtimes/det.py', '../_base_/schedules/schedule_1x.py'
]
model = dict(
    backbone=dict(model_name='convit_small_dense', drop_path_rate=0.1),
    neck=[dict(type='gatedvision.SimplePyramid', in_channels=432, out_channels=None),
          dict(type='FPN', in_channels=[108, 216, 432, 432], out_channels=256, num_outs=5, start_level=1, add_extra_convs='on_input')],
)
train_pipeline = [  # boxes only
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(1333, 800), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_evaluator = dict(metric='bbox')
test_evaluator = val_evaluator
