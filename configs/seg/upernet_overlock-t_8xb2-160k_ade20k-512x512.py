# OverLoCK-T UPerNet 160k, the authors' segmentation/configs/overlock/upernet_overlock_tiny_ade20k_8xb2.py.
# Released: https://github.com/LMMMEng/OverLoCK/releases/download/v1/upernet_overlock_tiny_ade20k.pth (mIoU 50.3);
# tools/test.py takes it as it is (docs/configs.md, "The authors' released checkpoints").
_base_ = [
    '../_base_/models/upernet_timm.py', '../_base_/datasets/ade20k.py',
    '../_base_/runtimes/seg.py', '../_base_/schedules/schedule_160k.py'
]
model = dict(
    data_preprocessor=dict(size=_base_.crop_size),
    backbone=dict(model_name='overlock_t', drop_path_rate=0.2),
    decode_head=dict(in_channels=[64, 128, 384, 640]),
    auxiliary_head=dict(in_channels=384),
)
