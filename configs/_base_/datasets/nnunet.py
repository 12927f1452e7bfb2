# An nnU-Net raw (or MSD) dataset: random 2-D slices for training, whole volumes for validation
# and testing (fold 0 of splits_final.json, else nnU-Net's default 5-fold split).
# Here MSD Task01 BrainTumour / nnU-Net Dataset001: 4 MRI channels, 4 labels, 240x240 axial slices.
data_root = 'data/nnUNet_raw/Dataset001_BrainTumour'
dataset_type = 'gatedvision.NnUNetSliceDataset'
slices = dict(axis=2, context=0, normalize='zscore')  # shared by training and inference
# a training sample: a slice (a third of them through a random foreground voxel: nnU-Net's
# oversampling), a crop holding that voxel, flips, an intensity jitter (gatedvision/tasks/medseg/transforms.py)
train_pipeline = [
    dict(type='gatedvision.SampleSlice', fg_prob=0.33),
    dict(type='gatedvision.RandomCropSlice', patch_size=(192, 192)),
    dict(type='gatedvision.RandomFlipSlice', prob=0.5),
    dict(type='gatedvision.RandomIntensity', scale=0.1, shift=0.1),
    dict(type='gatedvision.PackMedSegSlice'),
]
train_dataloader = dict(
    batch_size=8, num_workers=4, persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type=dataset_type, data_root=data_root, split='train', fold=0, **slices, cache='npy',
                 pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1, num_workers=2, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='pseudo_collate'),
    dataset=dict(type='gatedvision.NnUNetVolumeDataset', data_root=data_root, split='val',
                 fold=0, **slices))
test_dataloader = val_dataloader
val_evaluator = dict(type='gatedvision.MedSegMetric')
test_evaluator = val_evaluator
