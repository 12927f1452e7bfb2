# OverLoCK-T Mask R-CNN 1x, the authors' detection/configs/maskrcnn_overlock/mask_rcnn_overlock_t_in1k_fpn_1x_coco.py.
# Released: https://github.com/LMMMEng/OverLoCK/releases/download/v1/maskrcnn1x_overlock_tiny_coco.pth (box / mask AP
# 48.3 / 43.3); tools/test.py takes it as it is (docs/configs.md, "The authors' released checkpoints").
_base_ = [
    '../_base_/models/mask-rcnn_timm_fpn.py', '../_base_/datasets/coco_instance.py',
    '../_base_/runtimes/det.py', '../_base_/schedules/schedule_1x.py'
]
model = dict(
    backbone=dict(model_name='overlock_t', drop_path_rate=0.2, dense_ctx_proj=True),
    neck=dict(in_channels=[64, 128, 384, 640]),
)
optim_wrapper = dict(optimizer=dict(lr=2e-4))  # OverLoCK's detection lr (AdamW, wd 0.05)
