_base_ = [
    '../_base_/models/retinanet_timm_fpn.py', '../_base_/datasets/coco_detection.py',
    '../_base_/runtimes/det.py', '../_base_/schedules/schedule_1x.py'
]
model = dict(
    backbone=dict(model_name='overlock_t', drop_path_rate=0.2, dense_ctx_proj=True),
    neck=dict(in_channels=[64, 128, 384, 640]),
)
optim_wrapper = dict(optimizer=dict(lr=2e-4))  # OverLoCK's detection lr (AdamW, wd 0.05)
