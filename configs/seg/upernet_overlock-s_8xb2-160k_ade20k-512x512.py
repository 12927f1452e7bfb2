# OverLoCK-S UPerNet 160k, the authors' segmentation/configs/overlock/upernet_overlock_small_ade20k_8xb2.py.
# Released: https://github.com/LMMMEng/OverLoCK/releases/download/v1/upernet_overlock_small_ade20k.pth (mIoU
# 51.3); tools/test.py takes it as it is.
_base_ = './upernet_overlock-t_8xb2-160k_ade20k-512x512.py'
model = dict(
    backbone=dict(model_name='overlock_s', drop_path_rate=0.3),
    decode_head=dict(in_channels=[64, 128, 448, 640]),
    auxiliary_head=dict(in_channels=448),
)
