# ADE20K at 640x640 crops (the 640 UPerNet results): images resized towards 2560x640.
_base_ = './ade20k.py'
crop_size = (640, 640)
train_pipeline = [
    dict(type='gatedvision.LoadImageFromFile'),
    dict(type='LoadAnnotations'),  # reduce_zero_label: the dataset's (ADE20K's: True)
    dict(type='RandomResize', scale=(2560, 640), ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(2560, 640), keep_ratio=True),
    dict(type='LoadAnnotations'),  # reduce_zero_label: the dataset's (ADE20K's: True)
    dict(type='PackSegInputs')
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
