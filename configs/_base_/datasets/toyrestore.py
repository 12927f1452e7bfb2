# Toy denoising (sigma 25) on scikit-image's bundled pictures: 12 to train on (random 64 px crops),
# three held out (256 px) with fixed noise. Generated into the cache on first use.
_base_ = ['./denoise_sigma25.py']
train_pipeline = [
    dict(type='LoadImagePair'),
    dict(type='PairedAlbu', transforms=[
        dict(type='RandomCrop', height=64, width=64, pad_if_needed=True),
        dict(type='HorizontalFlip'), dict(type='RandomRotate90')]),
    _base_.degrade,
    dict(type='PackRestorationInputs')
]
train_dataloader = dict(
    batch_size=8, num_workers=1,
    dataset=dict(_delete_=True, type='ToyRestoreDataset', split='train', pipeline=train_pipeline))
val_dataloader = dict(
    num_workers=1,
    dataset=dict(_delete_=True, type='ToyRestoreDataset', split='val', pipeline=_base_.test_pipeline))
test_dataloader = val_dataloader
