# The toy shapes as COCO instances (gatedvision.ToyCocoDataset), 256x256, generated into the cache on
# first use; mmdet's CocoMetric reads its annotation file from the cache (gatedvision.ToyCocoMetric).
_base_ = ['./coco_instance.py']
dataset_type = 'gatedvision.ToyCocoDataset'
train_pipeline = [
    dict(type='gatedvision.LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='RandomResize', scale=(256, 256), ratio_range=(0.8, 1.25), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(256, 256), keep_ratio=True),  # sets the scale factor the heads need
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor'))
]
# workers restarted each epoch draw the same random augmentation after --resume as in a run that
# never stopped (persistent workers would carry their random state across epochs)
train_dataloader = dict(
    batch_size=2, persistent_workers=False,
    dataset=dict(_delete_=True, type=dataset_type, data_root=None, split='train',
                 filter_cfg=dict(filter_empty_gt=True, min_size=4), pipeline=train_pipeline))
val_dataloader = dict(
    num_workers=1,
    dataset=dict(_delete_=True, type=dataset_type, data_root=None, split='val', test_mode=True,
                 pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(_delete_=True, type='gatedvision.ToyCocoMetric', data_root=None, split='val',
                     metric=['bbox', 'segm'])
test_evaluator = val_evaluator
