# The demo dataset (gatedvision.make_toy_medseg): MNI152 T1 at 3 mm with synthetic tumours (1) and
# oedema (2), nnU-Net raw layout, 12 training + 4 validation cases, generated into the cache.
_base_ = ['./nnunet.py']
data_root = None
slices = dict(axis=2, context=0, normalize='zscore')
train_pipeline = [
    dict(type='gatedvision.SampleSlice', fg_prob=0.5),
    dict(type='gatedvision.RandomCropSlice', patch_size=(64, 64)),
    dict(type='gatedvision.RandomFlipSlice', prob=0.5),
    dict(type='gatedvision.RandomIntensity', scale=0.1, shift=0.1),
    dict(type='gatedvision.PackMedSegSlice'),
]
train_dataloader = dict(
    batch_size=8, num_workers=1,
    dataset=dict(data_root=data_root, **slices, cache='memory', pipeline=train_pipeline))
val_dataloader = dict(num_workers=0, persistent_workers=False,
                      dataset=dict(data_root=data_root, **slices))
test_dataloader = val_dataloader
