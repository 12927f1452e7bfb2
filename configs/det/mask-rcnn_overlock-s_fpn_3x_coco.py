# OverLoCK-S Mask R-CNN 3x (multi-scale + crop), the authors' mask_rcnn_overlock_s_in1k_fpn_3x_coco.py: AdamW
# 1e-4. Released: https://github.com/LMMMEng/OverLoCK/releases/download/v1/maskrcnn3x_overlock_small_coco.pth
# (box / mask AP 51.0 / 45.0); tools/test.py takes it as it is.
_base_ = './mask-rcnn_overlock-t_fpn_3x_coco.py'
model = dict(
    backbone=dict(model_name='overlock_s', drop_path_rate=0.4),
    neck=dict(in_channels=[64, 128, 448, 640]),
)
