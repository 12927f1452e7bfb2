# The toy shapes dataset (gatedvision.ToySegDataset): ADE20K's layout and pipeline at 256x256,
# generated into the cache on first use. Photometric augmentation through albumentations.
_base_ = ['./ade20k.py']
dataset_type = 'gatedvision.ToySegDataset'
crop_size = (256, 256)
train_pipeline = [
    dict(type='gatedvision.LoadImageFromFile'),
    dict(type='LoadAnnotations'),  # reduce_zero_label: the dataset's (ADE20K's: True)
    dict(type='RandomResize', scale=(256, 256), ratio_range=(0.75, 1.5), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='gatedvision.Albu', transforms=[
        dict(type='ColorJitter', brightness=0.2, contrast=0.2, saturation=0.2, hue=0.02, p=0.8),
        dict(type='GaussNoise', std_range=(0.01, 0.04), p=0.3)]),
    dict(type='PackSegInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),  # reduce_zero_label: the dataset's (ADE20K's: True)
    dict(type='PackSegInputs')
]
train_dataloader = dict(
    batch_size=4, num_workers=2, persistent_workers=True,
    dataset=dict(type=dataset_type, data_root=None, pipeline=train_pipeline))
val_dataloader = dict(
    num_workers=1, persistent_workers=True,
    dataset=dict(type=dataset_type, data_root=None, pipeline=test_pipeline))
test_dataloader = val_dataloader
