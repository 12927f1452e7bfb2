# CamVid as the SegNet tutorial distributes it (python tools/download.py --dataset camvid): 367 /
# 101 / 233 street scenes of 480x360, 11 classes (void as 255). UPerNet on HorNet-T from its
# ImageNet weights, the ADE20K recipe on one GPU with batch 8 for 8k iterations, 352x480 crops.
# Not trained here (no GPU): docs/your-data.md says what is measured.
_base_ = ['./upernet_hornet-t-7x7_8xb2-160k_ade20k-512x512.py']
data_root = 'data/CamVid/'
crop_size = (352, 480)
metainfo = dict(
    classes=('sky', 'building', 'pole', 'road', 'pavement', 'tree', 'sign', 'fence', 'car', 'pedestrian',
             'bicyclist'),
    palette=[[128, 128, 128], [128, 0, 0], [192, 192, 128], [128, 64, 128], [60, 40, 222], [128, 128, 0],
             [192, 128, 128], [64, 64, 128], [64, 0, 128], [64, 64, 0], [0, 128, 192]])
train_pipeline = [
    dict(type='gatedvision.LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='RandomResize', scale=(960, 720), ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs')
]
test_pipeline = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations'), dict(type='PackSegInputs')]
_data = dict(type='BaseSegDataset', data_root=data_root, metainfo=metainfo, img_suffix='.png',
             seg_map_suffix='.png', reduce_zero_label=False)
model = dict(
    data_preprocessor=dict(size=crop_size),
    decode_head=dict(num_classes=11), auxiliary_head=dict(num_classes=11),
    test_cfg=dict(_delete_=True, mode='whole'))
train_dataloader = dict(batch_size=8, dataset=dict(
    _data, data_prefix=dict(img_path='train', seg_map_path='trainannot'), pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(
    _data, data_prefix=dict(img_path='val', seg_map_path='valannot'), pipeline=test_pipeline))
test_dataloader = dict(dataset=dict(
    _data, data_prefix=dict(img_path='test', seg_map_path='testannot'), pipeline=test_pipeline))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=500),
    dict(type='PolyLR', eta_min=0.0, power=1.0, begin=500, end=8000, by_epoch=False)
]
train_cfg = dict(max_iters=8000, val_interval=1000)
default_hooks = dict(checkpoint=dict(interval=1000))
