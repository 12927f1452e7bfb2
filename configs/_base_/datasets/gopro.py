# GoPro motion deblurring: pairs in data/GoPro/{train,test}/{input,target} (the MPRNet / Restormer
# layout); 256 crops; PSNR / SSIM on RGB.
train_pipeline = [
    dict(type='LoadImagePair'),
    dict(type='PairedAlbu', transforms=[
        dict(type='RandomCrop', height=256, width=256, pad_if_needed=True),
        dict(type='HorizontalFlip'), dict(type='RandomRotate90')]),
    dict(type='PackRestorationInputs')
]
test_pipeline = [dict(type='LoadImagePair'), dict(type='PackRestorationInputs')]
train_dataloader = dict(
    batch_size=8, num_workers=4, persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(type='PairedImageDataset', data_root='data/GoPro/train', lq_dir='input',
                 gt_dir='target', pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1, num_workers=2, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='PairedImageDataset', data_root='data/GoPro/test', lq_dir='input',
                 gt_dir='target', pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = [dict(type='PSNR'), dict(type='SSIM')]
test_evaluator = val_evaluator
