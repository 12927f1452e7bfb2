# HorNet-T (GF) UPerNet 160k, the authors' semantic_segmentation/configs/hornet/
# upernet_hornet_tiny_gf_512_160k_ade20k.py. Released: https://cloud.tsinghua.edu.cn/f/34725e1401194786bb76/?dl=1
# (mIoU 49.2; 49.3 with multi-scale + flip); tools/test.py takes it as it is (docs/configs.md).
# GF: the authors' segmentation filters are h, w = 24, 13 / 12, 7, what hornet_*_gf builds for img_size=384
_base_ = [
    '../_base_/models/upernet_timm.py', '../_base_/datasets/ade20k.py',
    '../_base_/runtimes/seg.py', '../_base_/schedules/schedule_160k.py'
]
model = dict(
    data_preprocessor=dict(size=_base_.crop_size),
    backbone=dict(model_name='hornet_tiny_gf', drop_path_rate=0.4, img_size=384),
    decode_head=dict(in_channels=[64, 128, 256, 512]),
    auxiliary_head=dict(in_channels=256),
    test_cfg=dict(mode='slide', crop_size=_base_.crop_size, stride=(341, 341)),
)
# AdamW lr 1e-4, weight decay 0.05, stage-wise lr decay 0.9 (6 layers), gradient clipping at 1
optim_wrapper = dict(
    constructor='gatedvision.LayerDecayOptimWrapperConstructor',
    optimizer=dict(lr=1e-4, weight_decay=0.05),
    paramwise_cfg=dict(_delete_=True, decay_rate=0.9, decay_type='stage_wise', num_layers=6),
    clip_grad=dict(max_norm=1, norm_type=2))
