# OverLoCK-T Mask R-CNN 3x (multi-scale + crop), the authors' mask_rcnn_overlock_t_in1k_fpn_3x_coco.py: AdamW
# 1e-4. Released: https://github.com/LMMMEng/OverLoCK/releases/download/v1/maskrcnn3x_overlock_tiny_coco.pth
# (box / mask AP 49.6 / 43.9); tools/test.py takes it as it is.
_base_ = [
    '../_base_/models/mask-rcnn_timm_fpn.py', '../_base_/datasets/coco_instance_ms-crop.py',
    '../_base_/runtimes/det.py', '../_base_/schedules/schedule_3x.py'
]
model = dict(
    backbone=dict(model_name='overlock_t', drop_path_rate=0.2, dense_ctx_proj=True),
    neck=dict(in_channels=[64, 128, 384, 640]),
)
