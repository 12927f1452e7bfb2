# OverLoCK-B Mask R-CNN 1x, the authors'
# detection/configs/maskrcnn_overlock/mask_rcnn_overlock_b_in1k_fpn_1x_coco.py. Released:
# https://github.com/LMMMEng/OverLoCK/releases/download/v1/maskrcnn1x_overlock_base_coco.pth (box / mask AP 49.9
# / 44.4); tools/test.py takes it as it is.
_base_ = './mask-rcnn_overlock-t_fpn_1x_coco.py'
model = dict(
    backbone=dict(model_name='overlock_b', drop_path_rate=0.6),
    neck=dict(in_channels=[80, 160, 528, 720]),
)
