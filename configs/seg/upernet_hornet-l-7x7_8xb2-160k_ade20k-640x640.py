# HorNet-L (7x7) UPerNet 160k, the authors' semantic_segmentation/configs/hornet/
# upernet_hornet_large_7x7_640_160k_ade20k.py. Released: https://cloud.tsinghua.edu.cn/f/d7a782e07a354f59bf62/?dl=1
# (mIoU 54.1; 54.5 with multi-scale + flip); tools/test.py takes it as it is (docs/configs.md).
_base_ = [
    '../_base_/models/upernet_timm.py', '../_base_/datasets/ade20k-640x640.py',
    '../_base_/runtimes/seg.py', '../_base_/schedules/schedule_160k.py'
]
model = dict(
    data_preprocessor=dict(size=_base_.crop_size),
    backbone=dict(model_name='hornet_large_7x7', drop_path_rate=0.4),
    decode_head=dict(in_channels=[192, 384, 768, 1536]),
    auxiliary_head=dict(in_channels=768),
    test_cfg=dict(mode='slide', crop_size=_base_.crop_size, stride=(426, 426)),
)
# AdamW lr 1e-4, weight decay 0.05, stage-wise lr decay 0.8 (12 layers), gradient clipping at 0.1
optim_wrapper = dict(
    constructor='gatedvision.LayerDecayOptimWrapperConstructor',
    optimizer=dict(lr=1e-4, weight_decay=0.05),
    paramwise_cfg=dict(_delete_=True, decay_rate=0.8, decay_type='stage_wise', num_layers=12),
    clip_grad=dict(max_norm=0.1, norm_type=2))
