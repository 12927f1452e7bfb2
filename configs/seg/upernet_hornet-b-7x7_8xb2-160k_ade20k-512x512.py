# HorNet-B (7x7) UPerNet 160k, the authors' semantic_segmentation/configs/hornet/
# upernet_hornet_base_7x7_512_160k_ade20k.py. Released: https://cloud.tsinghua.edu.cn/f/98288e9023c2425a880c/?dl=1
# (mIoU 50.0; 50.5 with multi-scale + flip); tools/test.py takes it as it is (docs/configs.md).
_base_ = [
    '../_base_/models/upernet_timm.py', '../_base_/datasets/ade20k.py',
    '../_base_/runtimes/seg.py', '../_base_/schedules/schedule_160k.py'
]
model = dict(
    data_preprocessor=dict(size=_base_.crop_size),
    backbone=dict(model_name='hornet_base_7x7', drop_path_rate=0.4),
    decode_head=dict(in_channels=[128, 256, 512, 1024]),
    auxiliary_head=dict(in_channels=512),
    test_cfg=dict(mode='slide', crop_size=_base_.crop_size, stride=(341, 341)),
)
# AdamW lr 1e-4, weight decay 0.05, stage-wise lr decay 0.9 (12 layers), gradient clipping at 1
optim_wrapper = dict(
    constructor='gatedvision.LayerDecayOptimWrapperConstructor',
    optimizer=dict(lr=1e-4, weight_decay=0.05),
    paramwise_cfg=dict(_delete_=True, decay_rate=0.9, decay_type='stage_wise', num_layers=12),
    clip_grad=dict(max_norm=1, norm_type=2))
