# Gaussian colour denoising, sigma 25: clean training pictures (e.g. DIV2K + Flickr2K + BSD400 + WED,
# "DFWB") degraded on the fly, tested on CBSD68 with a fixed noise seed; PSNR / SSIM on RGB.
sigma = 25
degrade = dict(type='Degrade',
               transforms=[dict(type='GaussNoise', std_range=(sigma / 255, sigma / 255), p=1.0)])
train_pipeline = [
    dict(type='LoadImagePair'),
    dict(type='PairedAlbu', transforms=[
        dict(type='RandomCrop', height=256, width=256, pad_if_needed=True),
        dict(type='HorizontalFlip'), dict(type='RandomRotate90')]),
    degrade,
    dict(type='PackRestorationInputs')
]
test_pipeline = [
    dict(type='LoadImagePair'),
    dict(degrade, seed=0),  # the same noise on every run
    dict(type='PackRestorationInputs')
]
train_dataloader = dict(
    batch_size=8, num_workers=4, persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(type='ImageFolderDataset', data_root='data/denoise/DFWB', pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1, num_workers=2, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='ImageFolderDataset', data_root='data/denoise/CBSD68', pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = [dict(type='PSNR', input_score=True), dict(type='SSIM')]
test_evaluator = val_evaluator
