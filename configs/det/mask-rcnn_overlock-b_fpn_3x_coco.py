# OverLoCK-B Mask R-CNN 3x (multi-scale + crop), the authors' mask_rcnn_overlock_b_in1k_fpn_3x_coco.py: AdamW
# 1e-4. Released: https://github.com/LMMMEng/OverLoCK/releases/download/v1/maskrcnn3x_overlock_base_coco.pth
# (box / mask AP 51.4 / 45.3); tools/test.py takes it as it is.
_base_ = './mask-rcnn_overlock-t_fpn_3x_coco.py'
model = dict(
    backbone=dict(model_name='overlock_b', drop_path_rate=0.6),
    neck=dict(in_channels=[80, 160, 528, 720]),
)
